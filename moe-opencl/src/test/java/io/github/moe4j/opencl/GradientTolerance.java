package io.github.moe4j.opencl;

/**
 * The one place that says how far an OpenCL gradient may be from the double-precision reference's
 * (SPEC §11), derived from float32 error growth before measuring, never widened to make a case pass.
 *
 * <p>With u = 2^-24, a float sum of n products is off by at most about n·u times the magnitudes of
 * its terms, and errors add along a chain of dependent roundings. The longest chain to any
 * gradient element:
 * <ul>
 * <li>expert output f (forward): d + h + 8 (two GEMMs, the activation with its 2.5u erf approximation);</li>
 * <li>\( \partial L / \partial g = \sum_c dY_c f_c \): d more;</li>
 * <li>through the gates and the softmax to \( \partial L / \partial z \): 2E + 2k + 8
 *     (\( \sum g\,dg \), \( \sum p\,dp \), the loss terms);</li>
 * <li>to the input (\( \sum_e \partial L / \partial z_e W_r \)) or through the experts
 *     (\( \sum_c W_{out} g\,dY \), then \( \sum_i W_{in} \partial L / \partial a \), 2h for the gated kinds): h + 2;</li>
 * <li>a weight gradient adds its reduction over the tokens (rows) that touch it: T.</li>
 * </ul>
 * So n = 2d + 2h + T + 2E + 2k + 32 bounds every chain. Logit errors enter exp and so the gates
 * and p multiplied by up to 1 + max|z| (as in the forward test). Each element is allowed
 * {@code n·u·(1 + max|z|)·(|want| + max|want over the tensor|)}, the second term standing for the
 * magnitudes of terms that cancelled in the reductions (a gradient is a signed sum).
 */
final class GradientTolerance {
    static final double U = Math.ulp(1.0f) / 2;

    private GradientTolerance() {}

    /** The rounding-chain length n for a call. */
    static double chain(int d, int h, int tokens, int experts, int k) {
        return 2.0 * d + 2.0 * h + tokens + 2.0 * experts + 2.0 * k + 32;
    }

    /** The allowed |got − want| of one element. */
    static double of(double chain, double maxAbsLogit, double want, double maxAbsWant) {
        return chain * U * (1 + maxAbsLogit) * (Math.abs(want) + maxAbsWant);
    }
}

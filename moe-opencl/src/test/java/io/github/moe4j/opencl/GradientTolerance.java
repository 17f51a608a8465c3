package io.github.moe4j.opencl;

/**
 * The one place that says how far an OpenCL gradient may be from the double-precision reference's
 * (SPEC §11), derived from float32 error growth before measuring, never widened to make a case pass.
 *
 * <p>With u = 2^-24, a float sum of n products is off by at most about n·u times the magnitudes of
 * its terms, and errors add along a chain of dependent roundings. The longest chain to any
 * gradient element:
 * <ul>
 * <li>expert output f (forward): d + h + 8 (two GEMMs, the activation with its 2u erfc fit);</li>
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
 *
 * <p>Noisy top-k with the smooth load adds \( P = \Phi(u) \), \( u = (z_i - \mathrm{thr}) / \sigma_i \):
 * an absolute error δ in z or thr (each about n·u·|value|) moves u by δ/σ, and the density
 * \( \phi(u) \) and \( \Phi(u) \) by a relative \( (1 + |u|)\,\delta/\sigma \). So such cases multiply the
 * amplification by {@link #noisyAmplification} = \( 1 + \max (1 + |u|)(|z_i| + |\mathrm{thr}|)/\sigma_i \) over the
 * (t, i) with |u| ≤ 8 (beyond, \( \phi(u) &lt; 10^{-14} \) and nothing measurable is left).
 * The cv² losses (\( \mathrm{var}/\mu^2 \)) turn a relative error δ of their E inputs into at most
 * \( 2\delta(|\mathrm{cv}^2| + \sqrt{|\mathrm{cv}^2|}) \) absolute ({@link #ofCvSquared}).
 */
final class GradientTolerance {
    static final double U = Math.ulp(1.0f) / 2;

    private GradientTolerance() {}

    /** The rounding-chain length n for a call. */
    static double chain(int d, int h, int tokens, int experts, int k) {
        return 2.0 * d + 2.0 * h + tokens + 2.0 * experts + 2.0 * k + 32;
    }

    /** The extra amplification of noisy top-k's smooth load (1 without it), from the reference's router output. */
    static double noisyAmplification(io.github.moe4j.reference.RouterOutput r, int tokens, int experts, int k) {
        if (r.probInTopK() == null) {
            return 1;
        }
        double worst = 0;
        for (int t = 0; t < tokens; t++) {
            int[] order = io.github.moe4j.reference.TopK.ofRow(r.keys(), t * experts, experts, k + 1);
            double in = r.keys()[t * experts + order[k]];
            double out = r.keys()[t * experts + order[k - 1]];
            for (int i = 0; i < experts; i++) {
                double thr = r.keys()[t * experts + i] > in ? in : out;
                double sigma = r.noiseStd()[t * experts + i];
                double u = (r.logits()[t * experts + i] - thr) / sigma;
                if (Math.abs(u) <= 8) {
                    worst = Math.max(worst, (1 + Math.abs(u)) * (Math.abs(r.logits()[t * experts + i]) + Math.abs(thr)) / sigma);
                }
            }
        }
        return 1 + worst;
    }

    /** The allowed |got − want| of a cv² loss whose inputs carry a relative error {@code delta}. */
    static double ofCvSquared(double delta, double want) {
        return 2 * delta * (Math.abs(want) + Math.sqrt(Math.abs(want)) + 1e-6);
    }

    /** The allowed |got − want| of one element. */
    static double of(double chain, double maxAbsLogit, double want, double maxAbsWant) {
        return chain * U * (1 + maxAbsLogit) * (Math.abs(want) + maxAbsWant);
    }
}

package io.github.moe4j.reference;

import io.github.moe4j.api.Activation;
import org.apache.commons.numbers.gamma.Erf;

/**
 * One expert's feed-forward network (SPEC §8):
 * \( f_e(x) = W_{out,e}^\top \phi(W_{in,e}^\top x + b_{in,e}) + b_{out,e} \), and for the gated kinds
 * \( f_e(x) = W_{out,e}^\top (\phi(W_{in,e}^\top x + b_{in,e}) \odot W_{gate,e}^\top x) + b_{out,e} \).
 * With W_in, W_gate of shape [E, d, h] and W_out of shape [E, h, d], row-major.
 *
 * <pre>
 * Shazeer, N. "GLU Variants Improve Transformer." arXiv:2002.05202, 2020 (GEGLU, SwiGLU).
 * </pre>
 * Mirrors Hugging Face {@code SwitchTransformersDenseActDense} (RELU, GELU) and
 * {@code MixtralExperts} (SWIGLU: w1 = W_in, w3 = W_gate, w2 = W_out).
 */
public final class ExpertNetwork {
    private static final double SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
    private static final double GELU_TANH_CUBIC = 0.044715;

    private ExpertNetwork() {}

    /**
     * What one row's forward keeps for backward: the pre-activations and the hidden vector.
     *
     * @param preActivation \( a = W_{in}^\top x + b_{in} \), [h]
     * @param gateLinear    \( b = W_{gate}^\top x \), [h], or null if not gated
     * @param hidden        \( \phi(a) \) or \( \phi(a) \odot b \), [h]
     * @param output        \( f_e(x) \), [d]
     */
    public record Activations(double[] preActivation, double[] gateLinear, double[] hidden, double[] output) {}

    /** \( f_e(x) \) for one row {@code x[xOffset .. xOffset + d)}. */
    public static Activations forward(ReferenceWeights w, Activation kind, int e, double[] x, int xOffset) {
        int d = w.d();
        int h = w.h();
        double[] a = new double[h];
        double[] b = kind.isGated() ? new double[h] : null;
        for (int i = 0; i < h; i++) {
            double ai = w.bIn() == null ? 0 : w.bIn()[e * h + i];
            double bi = 0;
            for (int j = 0; j < d; j++) {
                ai += x[xOffset + j] * w.wIn()[(e * d + j) * h + i];
                if (b != null) {
                    bi += x[xOffset + j] * w.wGate()[(e * d + j) * h + i];
                }
            }
            a[i] = ai;
            if (b != null) {
                b[i] = bi;
            }
        }
        double[] hidden = new double[h];
        for (int i = 0; i < h; i++) {
            hidden[i] = activate(kind, a[i]) * (b == null ? 1 : b[i]);
        }
        double[] out = new double[d];
        for (int j = 0; j < d; j++) {
            double yj = w.bOut() == null ? 0 : w.bOut()[e * d + j];
            for (int i = 0; i < h; i++) {
                yj += hidden[i] * w.wOut()[(e * h + i) * d + j];
            }
            out[j] = yj;
        }
        return new Activations(a, b, hidden, out);
    }

    /** \( \phi(a) \) of an expert kind (the gated kinds use their base nonlinearity). */
    public static double activate(Activation kind, double a) {
        switch (kind) {
            case RELU:
                return a > 0 ? a : 0;
            case GELU:
            case GEGLU:
                return 0.5 * a * (1 + Erf.value(a / Math.sqrt(2)));
            case GELU_TANH:
            case GEGLU_TANH:
                return 0.5 * a * (1 + Math.tanh(SQRT_2_OVER_PI * (a + GELU_TANH_CUBIC * a * a * a)));
            case SILU:
            case SWIGLU:
                return a / (1 + Math.exp(-a));
            default:
                throw new AssertionError(kind);
        }
    }

    /** \( \phi'(a) \), the derivative of {@link #activate}; ReLU's is taken as 0 at 0 (PyTorch). */
    public static double derivative(Activation kind, double a) {
        switch (kind) {
            case RELU:
                return a > 0 ? 1 : 0;
            case GELU:
            case GEGLU: {
                double cdf = 0.5 * (1 + Erf.value(a / Math.sqrt(2)));
                double pdf = Math.exp(-0.5 * a * a) / Math.sqrt(2 * Math.PI);
                return cdf + a * pdf;
            }
            case GELU_TANH:
            case GEGLU_TANH: {
                double u = SQRT_2_OVER_PI * (a + GELU_TANH_CUBIC * a * a * a);
                double th = Math.tanh(u);
                double du = SQRT_2_OVER_PI * (1 + 3 * GELU_TANH_CUBIC * a * a);
                return 0.5 * (1 + th) + 0.5 * a * (1 - th * th) * du;
            }
            case SILU:
            case SWIGLU: {
                double s = 1 / (1 + Math.exp(-a));
                return s * (1 + a * (1 - s));
            }
            default:
                throw new AssertionError(kind);
        }
    }
}

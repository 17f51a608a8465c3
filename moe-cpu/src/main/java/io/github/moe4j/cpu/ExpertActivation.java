package io.github.moe4j.cpu;

import io.github.moe4j.api.Activation;
import org.apache.commons.numbers.gamma.Erfc;

/**
 * The experts' nonlinearity over a range of a block's elements, in float, one tight loop per kind
 * (the reference's {@code ExpertNetwork.activate} and {@code ExpertNetwork.derivative}, applied to
 * a whole block): \( \mathit{hidden} = \phi(a) \), or \( \phi(a) \odot b \) for the gated kinds, and
 * backward \( \partial a = \partial \mathit{hidden} \odot \phi'(a) \odot b \),
 * \( \partial b = \partial \mathit{hidden} \odot \phi(a) \). ReLU's derivative is 0 at 0 (PyTorch).
 */
final class ExpertActivation {
    private static final float SQRT_2_OVER_PI = (float) Math.sqrt(2 / Math.PI);
    private static final float GELU_TANH_CUBIC = 0.044715f;
    private static final double INV_SQRT_2 = 1 / Math.sqrt(2);
    private static final double INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

    private ExpertActivation() {}

    /** \( \mathit{hidden}[i] = \phi(a[i]) \) (times {@code b[i]} if b is not null) for i in [from, to). */
    static void forward(Activation kind, float[] a, float[] b, float[] hidden, int from, int to) {
        switch (kind) {
            case RELU:
                for (int i = from; i < to; i++) {
                    hidden[i] = a[i] > 0 ? a[i] : 0f;
                }
                break;
            case SILU:
            case SWIGLU:
                for (int i = from; i < to; i++) {
                    float v = a[i];
                    float phi = v / (1f + (float) Math.exp(-v));
                    hidden[i] = b == null ? phi : phi * b[i];
                }
                break;
            case GELU_TANH:
            case GEGLU_TANH:
                for (int i = from; i < to; i++) {
                    float v = a[i];
                    // ½v(1 + tanh u) = v σ(2u), without the cancellation of 1 + tanh u for u ≪ 0
                    float phi = v / (1f + (float) Math.exp(-2f * SQRT_2_OVER_PI * (v + GELU_TANH_CUBIC * v * v * v)));
                    hidden[i] = b == null ? phi : phi * b[i];
                }
                break;
            case GELU:
            case GEGLU:
                for (int i = from; i < to; i++) {
                    double v = a[i];
                    // ½ v erfc(-v/√2) = ½ v (1 + erf(v/√2)), without the cancellation of 1 + erf for v ≪ 0
                    float phi = (float) (0.5 * v * Erfc.value(-v * INV_SQRT_2));
                    hidden[i] = b == null ? phi : phi * b[i];
                }
                break;
            default:
                throw new AssertionError(kind);
        }
    }

    /**
     * Backward of {@link #forward} for i in [from, to): {@code dA[i]} and, if b is not null, {@code dB[i]}
     * from {@code dHidden[dhFrom + i - from]}. dA may be a and dB may be b: each element is read
     * before it is written.
     */
    static void backward(Activation kind, float[] a, float[] b, int from, int to, float[] dHidden, int dhFrom, float[] dA,
                         float[] dB) {
        int shift = dhFrom - from;
        switch (kind) {
            case RELU:
                for (int i = from; i < to; i++) {
                    dA[i] = a[i] > 0 ? dHidden[shift + i] : 0f;
                }
                break;
            case SILU:
            case SWIGLU:
                for (int i = from; i < to; i++) {
                    float v = a[i];
                    float s = 1f / (1f + (float) Math.exp(-v));
                    store(dHidden[shift + i], s * (1f + v * (1f - s)), v * s, b, dA, dB, i);
                }
                break;
            case GELU_TANH:
            case GEGLU_TANH:
                for (int i = from; i < to; i++) {
                    float v = a[i];
                    // with s = σ(2u): ½(1 + tanh u) = s, ½(1 - tanh² u) = 2 s (1 - s)
                    float e = (float) Math.exp(-2f * SQRT_2_OVER_PI * (v + GELU_TANH_CUBIC * v * v * v));
                    float s = 1f / (1f + e);
                    float oneMinusS = 1f / (1f + 1f / e);
                    float du = SQRT_2_OVER_PI * (1f + 3f * GELU_TANH_CUBIC * v * v);
                    store(dHidden[shift + i], s + 2f * v * s * oneMinusS * du, v * s, b, dA, dB, i);
                }
                break;
            case GELU:
            case GEGLU:
                for (int i = from; i < to; i++) {
                    double v = a[i];
                    double cdf = 0.5 * Erfc.value(-v * INV_SQRT_2);
                    double pdf = Math.exp(-0.5 * v * v) * INV_SQRT_2PI;
                    store(dHidden[shift + i], (float) (cdf + v * pdf), (float) (v * cdf), b, dA, dB, i);
                }
                break;
            default:
                throw new AssertionError(kind);
        }
    }

    private static void store(float dh, float derivative, float phi, float[] b, float[] dA, float[] dB, int i) {
        if (b == null) {
            dA[i] = dh * derivative;
        } else {
            dA[i] = dh * derivative * b[i];
            dB[i] = dh * phi;
        }
    }
}

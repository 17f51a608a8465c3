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
    static final float SQRT_2_OVER_PI = (float) Math.sqrt(2 / Math.PI);
    static final float GELU_TANH_CUBIC = 0.044715f;
    private static final double INV_SQRT_2 = 1 / Math.sqrt(2);
    private static final double INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

    /** Cody and Waite's split of ln 2 (Cephes' expf): the high part has few bits, so n·LN2_HI is exact. */
    static final float LN2_HI = 0.693359375f;
    static final float LN2_LO = -2.12194440e-4f;
    static final float LOG2E = 1.44269504088896341f;
    /** 1.5 · 2^23: adding it rounds a float of magnitude below 2^22 to an integer in the low mantissa bits. */
    static final float ROUND = 12582912f;

    /**
     * Whether SiLU and the tanh form of GELU run on {@link SimdActivation}: when the JVM was started
     * with {@code --add-modules jdk.incubator.vector} and {@code -Dmoe4j.cpu.simd=false} is not set.
     * The results are bit-identical either way; only the speed differs.
     */
    static final boolean SIMD = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()
            && !"false".equals(System.getProperty("moe4j.cpu.simd"));

    private ExpertActivation() {}

    /** What runs the activation, for {@code device()}. */
    static String description() {
        return SIMD ? "activation: SIMD (" + SimdActivation.description() + ")"
                : "activation: scalar (--add-modules jdk.incubator.vector makes it SIMD)";
    }

    /** Whether {@link SimdActivation} has a loop for this kind (GELU's erfc stays scalar). */
    private static boolean simd(Activation kind) {
        return SIMD && kind != Activation.GELU && kind != Activation.GEGLU;
    }

    /**
     * {@code v > 0 ? v : 0}, and so {@code x} where v > 0 and +0 elsewhere (NaN included), without a
     * branch: the sign of a pre-activation is a coin toss, and a branch on it, mispredicted half the
     * time, made the scalar ReLU loop 6× slower (about 1 ms for a block of 128 × 2048 here).
     */
    static float keepWherePositive(float v, float x) {
        int keep = v > 0 ? -1 : 0; // an integer select: a cmov, where a float select is a branch on x86
        return Float.intBitsToFloat(Float.floatToRawIntBits(x) & keep);
    }

    /**
     * \( e^x \) in float, within 2 ulp of the correctly rounded value (tested over every 32nd float
     * of the range): Cephes' {@code expf}. x = n ln 2 + r with |r| ≤ ½ ln 2, \( e^r \) by its
     * degree-5 minimax polynomial, times \( 2^n \) built in the exponent bits. About 1.5× faster
     * than {@code (float) Math.exp(x)} here, where the activation is a fifth of the forward. Outside
     * [-87, 88], where \( 2^n \) leaves the normal range, it is {@code Math.exp}.
     */
    static float exp(float x) {
        if (!(x >= -87f && x <= 88f)) {
            return (float) Math.exp(x); // subnormal, overflow or NaN: rare, and exact there
        }
        float t = x * LOG2E + ROUND;
        int n = Float.floatToRawIntBits(t) - Float.floatToRawIntBits(ROUND);
        float fn = t - ROUND;
        float r = x - fn * LN2_HI - fn * LN2_LO;
        float p = 1.9875691500e-4f;
        p = p * r + 1.3981999507e-3f;
        p = p * r + 8.3334519073e-3f;
        p = p * r + 4.1665795894e-2f;
        p = p * r + 1.6666665459e-1f;
        p = p * r + 5.0000001201e-1f;
        return (p * r * r + r + 1f) * Float.intBitsToFloat((n + 127) << 23);
    }

    /**
     * \( \mathit{hidden}[\mathit{hiddenFrom} + i - \mathit{from}] = \phi(a[i]) \) (times {@code b[i]}
     * if b is not null) for i in [from, to): in place (hidden = a, hiddenFrom = from; each element is
     * read before it is written), or a block's hidden values into another buffer, from its start.
     */
    static void forward(Activation kind, float[] a, float[] b, int from, int to, float[] hidden, int hiddenFrom) {
        if (simd(kind)) {
            SimdActivation.forward(kind, a, b, from, to, hidden, hiddenFrom);
        } else {
            forwardScalar(kind, a, b, from, to, hidden, hiddenFrom);
        }
    }

    /** {@link #forward} one element at a time: the definition {@link SimdActivation} reproduces bit for bit. */
    static void forwardScalar(Activation kind, float[] a, float[] b, int from, int to, float[] hidden, int hiddenFrom) {
        int shift = hiddenFrom - from;
        switch (kind) {
            case RELU:
                for (int i = from; i < to; i++) {
                    hidden[shift + i] = keepWherePositive(a[i], a[i]);
                }
                break;
            case SILU:
            case SWIGLU:
                for (int i = from; i < to; i++) {
                    float v = a[i];
                    float phi = v / (1f + exp(-v));
                    hidden[shift + i] = b == null ? phi : phi * b[i];
                }
                break;
            case GELU_TANH:
            case GEGLU_TANH:
                for (int i = from; i < to; i++) {
                    float v = a[i];
                    // ½v(1 + tanh u) = v σ(2u), without the cancellation of 1 + tanh u for u ≪ 0
                    float phi = v / (1f + exp(-2f * SQRT_2_OVER_PI * (v + GELU_TANH_CUBIC * v * v * v)));
                    hidden[shift + i] = b == null ? phi : phi * b[i];
                }
                break;
            case GELU:
            case GEGLU:
                for (int i = from; i < to; i++) {
                    double v = a[i];
                    // ½ v erfc(-v/√2) = ½ v (1 + erf(v/√2)), without the cancellation of 1 + erf for v ≪ 0
                    float phi = (float) (0.5 * v * Erfc.value(-v * INV_SQRT_2));
                    hidden[shift + i] = b == null ? phi : phi * b[i];
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
        if (simd(kind)) {
            SimdActivation.backward(kind, a, b, from, to, dHidden, dhFrom, dA, dB);
        } else {
            backwardScalar(kind, a, b, from, to, dHidden, dhFrom, dA, dB);
        }
    }

    /** {@link #backward} one element at a time: the definition {@link SimdActivation} reproduces bit for bit. */
    static void backwardScalar(Activation kind, float[] a, float[] b, int from, int to, float[] dHidden, int dhFrom, float[] dA,
                               float[] dB) {
        int shift = dhFrom - from;
        switch (kind) {
            case RELU:
                for (int i = from; i < to; i++) {
                    dA[i] = keepWherePositive(a[i], dHidden[shift + i]);
                }
                break;
            case SILU:
            case SWIGLU:
                for (int i = from; i < to; i++) {
                    float v = a[i];
                    float s = 1f / (1f + exp(-v));
                    store(dHidden[shift + i], s * (1f + v * (1f - s)), v * s, b, dA, dB, i);
                }
                break;
            case GELU_TANH:
            case GEGLU_TANH:
                for (int i = from; i < to; i++) {
                    float v = a[i];
                    // with s = σ(2u): ½(1 + tanh u) = s, ½(1 - tanh² u) = 2 s (1 - s)
                    float e = exp(-2f * SQRT_2_OVER_PI * (v + GELU_TANH_CUBIC * v * v * v));
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

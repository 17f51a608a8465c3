package io.github.moe4j.cpu;

import static io.github.moe4j.cpu.ExpertActivation.GELU_TANH_CUBIC;
import static io.github.moe4j.cpu.ExpertActivation.LN2_HI;
import static io.github.moe4j.cpu.ExpertActivation.LN2_LO;
import static io.github.moe4j.cpu.ExpertActivation.LOG2E;
import static io.github.moe4j.cpu.ExpertActivation.ROUND;
import static io.github.moe4j.cpu.ExpertActivation.SQRT_2_OVER_PI;

import io.github.moe4j.api.Activation;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link ExpertActivation}'s ReLU, SiLU and tanh-GELU loops (and the gated forms) on the Vector API:
 * the same float operations in the same order, lane by lane, so every result is bit-identical to
 * the scalar loop's. Java 17 does not auto-vectorize the exponential (the bit moves between float
 * and int stop C2's superword pass), and the activation was a seventh of configuration M's forward.
 *
 * <p>{@code jdk.incubator.vector} is an incubator module in Java 17: this class is loaded only when
 * the JVM was started with {@code --add-modules jdk.incubator.vector} ({@link ExpertActivation#SIMD}).
 * A vector with a lane outside the exponential's polynomial range ([-87, 88], or NaN) goes to the
 * scalar loop, which takes {@code Math.exp} there, as do the last elements short of a whole vector.
 */
final class SimdActivation {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final FloatVector ONE = FloatVector.broadcast(F, 1f);
    private static final FloatVector ZERO = FloatVector.zero(F);
    private static final int ROUND_BITS = Float.floatToRawIntBits(ROUND);
    /** The scalar loops' {@code -2f * SQRT_2_OVER_PI}, rounded the same way. */
    private static final float MINUS_TWO_SQRT_2_OVER_PI = -2f * SQRT_2_OVER_PI;
    /** The scalar loops' {@code 3f * GELU_TANH_CUBIC}, rounded the same way. */
    private static final float THREE_CUBIC = 3f * GELU_TANH_CUBIC;

    private SimdActivation() {}

    static String description() {
        return "Vector API, " + F.vectorBitSize() + "-bit, " + F.length() + " floats";
    }

    /** {@link ExpertActivation#forwardScalar}, a vector at a time. */
    static void forward(Activation kind, float[] a, float[] b, int from, int to, float[] hidden, int hiddenFrom) {
        if (kind == Activation.RELU) {
            keepWherePositive(a, from, to, a, from, hidden, hiddenFrom);
            return;
        }
        boolean tanh = kind == Activation.GELU_TANH || kind == Activation.GEGLU_TANH;
        int shift = hiddenFrom - from;
        int step = F.length();
        int i = from;
        for (int bound = from + F.loopBound(to - from); i < bound; i += step) {
            FloatVector v = FloatVector.fromArray(F, a, i);
            FloatVector x = sigmoidExponent(tanh, v);
            if (!inRange(x)) {
                ExpertActivation.forwardScalar(kind, a, b, i, i + step, hidden, shift + i);
                continue;
            }
            FloatVector phi = v.div(exp(x).add(1f));
            if (b != null) {
                phi = phi.mul(FloatVector.fromArray(F, b, i));
            }
            phi.intoArray(hidden, shift + i);
        }
        ExpertActivation.forwardScalar(kind, a, b, i, to, hidden, shift + i);
    }

    /** {@link ExpertActivation#backwardScalar}, a vector at a time; dA may be a and dB may be b. */
    static void backward(Activation kind, float[] a, float[] b, int from, int to, float[] dHidden, int dhFrom, float[] dA,
                         float[] dB) {
        if (kind == Activation.RELU) {
            keepWherePositive(a, from, to, dHidden, dhFrom, dA, from);
            return;
        }
        boolean tanh = kind == Activation.GELU_TANH || kind == Activation.GEGLU_TANH;
        int shift = dhFrom - from;
        int step = F.length();
        int i = from;
        for (int bound = from + F.loopBound(to - from); i < bound; i += step) {
            FloatVector v = FloatVector.fromArray(F, a, i);
            FloatVector x = sigmoidExponent(tanh, v);
            if (!inRange(x)) {
                ExpertActivation.backwardScalar(kind, a, b, i, i + step, dHidden, shift + i, dA, dB);
                continue;
            }
            FloatVector e = exp(x);
            FloatVector s = ONE.div(e.add(1f));
            FloatVector derivative;
            if (tanh) {
                // s + 2 v s (1 - s) du, with 1 - s = 1 / (1 + 1/e) and du = √(2/π) (1 + 3c v²)
                FloatVector oneMinusS = ONE.div(ONE.div(e).add(1f));
                FloatVector du = v.mul(THREE_CUBIC).mul(v).add(1f).mul(SQRT_2_OVER_PI);
                derivative = s.add(v.mul(2f).mul(s).mul(oneMinusS).mul(du));
            } else {
                // σ(v) (1 + v (1 - σ(v)))
                derivative = s.mul(v.mul(ONE.sub(s)).add(1f));
            }
            FloatVector dh = FloatVector.fromArray(F, dHidden, shift + i);
            if (b == null) {
                dh.mul(derivative).intoArray(dA, i);
            } else {
                FloatVector gate = FloatVector.fromArray(F, b, i);
                FloatVector phi = v.mul(s);
                dh.mul(derivative).mul(gate).intoArray(dA, i);
                dh.mul(phi).intoArray(dB, i);
            }
        }
        ExpertActivation.backwardScalar(kind, a, b, i, to, dHidden, shift + i, dA, dB);
    }

    /**
     * ReLU and its backward: {@code out[outFrom + i - from] = v[i] > 0 ? x[xFrom + i - from] : 0} for i
     * in [from, to), {@link ExpertActivation#keepWherePositive} a vector at a time (NaN in v gives +0
     * in both). out may be v or x at the same offset: each element is read before it is written.
     */
    private static void keepWherePositive(float[] v, int from, int to, float[] x, int xFrom, float[] out, int outFrom) {
        int xShift = xFrom - from;
        int outShift = outFrom - from;
        int i = from;
        for (int bound = from + F.loopBound(to - from); i < bound; i += F.length()) {
            VectorMask<Float> positive = FloatVector.fromArray(F, v, i).compare(VectorOperators.GT, 0f);
            ZERO.blend(FloatVector.fromArray(F, x, xShift + i), positive).intoArray(out, outShift + i);
        }
        for (; i < to; i++) {
            out[outShift + i] = ExpertActivation.keepWherePositive(v[i], x[xShift + i]);
        }
    }

    /**
     * x in the activation's \( \sigma = 1 / (1 + e^x) \): SiLU is \( v \sigma(v) \), so x = -v; tanh-GELU is
     * \( v \sigma(2u) \), so \( x = -2u = -2\sqrt{2/\pi}\,(v + c v^3) \), in the scalar loops' order.
     */
    private static FloatVector sigmoidExponent(boolean tanh, FloatVector v) {
        return tanh ? v.mul(GELU_TANH_CUBIC).mul(v).mul(v).add(v).mul(MINUS_TWO_SQRT_2_OVER_PI) : v.neg();
    }

    /** Whether every lane is in [-87, 88], where {@link #exp} is the scalar polynomial (false for NaN). */
    private static boolean inRange(FloatVector x) {
        return x.compare(VectorOperators.GE, -87f).and(x.compare(VectorOperators.LE, 88f)).allTrue();
    }

    /** {@link ExpertActivation#exp} lane by lane, for lanes in [-87, 88]. */
    private static FloatVector exp(FloatVector x) {
        FloatVector t = x.mul(LOG2E).add(ROUND);
        IntVector n = t.reinterpretAsInts().sub(ROUND_BITS);
        FloatVector fn = t.sub(ROUND);
        FloatVector r = x.sub(fn.mul(LN2_HI)).sub(fn.mul(LN2_LO));
        FloatVector p = FloatVector.broadcast(F, 1.9875691500e-4f);
        p = p.mul(r).add(1.3981999507e-3f);
        p = p.mul(r).add(8.3334519073e-3f);
        p = p.mul(r).add(4.1665795894e-2f);
        p = p.mul(r).add(1.6666665459e-1f);
        p = p.mul(r).add(5.0000001201e-1f);
        FloatVector scale = n.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        return p.mul(r).mul(r).add(r).add(1f).mul(scale);
    }
}

package io.github.moe4j.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Activation;
import io.github.moe4j.reference.ExpertNetwork;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** {@link ExpertActivation} in float against the reference's {@code ExpertNetwork} in double, over [-12, 12]. */
class ExpertActivationTest {
    private static final double U = Math.ulp(1f) / 2;

    @ParameterizedTest
    @EnumSource(Activation.class)
    void matchesTheReferenceInDouble(Activation kind) {
        int n = 4801;
        float[] a = ramp(n, 12f);
        float[] b = kind.isGated() ? gates(n) : null;
        float[] dh = new float[n];
        for (int i = 0; i < n; i++) {
            dh[i] = 0.75f - 1.5f * ((i * 104729) % n) / n;
        }
        a[n / 2] = 0f;
        float[] hidden = new float[n];
        float[] dA = new float[n];
        float[] dB = b == null ? null : new float[n];
        // the range [1, n - 1) only: the elements outside must stay untouched
        ExpertActivation.forward(kind, a, b, 1, n - 1, hidden, 1);
        ExpertActivation.backward(kind, a, b, 1, n - 1, dh, 1, dA, dB);
        for (int i = 1; i < n - 1; i++) {
            double bi = b == null ? 1 : b[i];
            double phi = ExpertNetwork.activate(kind, a[i]);
            double der = ExpertNetwork.derivative(kind, a[i]);
            // a few roundings of values of size (1 + |a|) |b|: exp, tanh, the products
            double bound = 32 * U * (1 + Math.abs(a[i])) * (1 + Math.abs(bi)) * (1 + Math.abs(dh[i]));
            check(kind, "hidden", a[i], hidden[i], phi * bi, bound);
            // relative too: tiny activations (φ(a) for a ≪ 0) must not cancel to 0. The float argument of exp
            // (up to ~0.09|a|³ for the tanh kinds) carries a relative error that grows with it.
            double relative = 16 * U * (1 + Math.abs(a[i]) + 0.1 * Math.abs(a[i] * a[i] * a[i])) * Math.abs(phi * bi);
            // near float's underflow (|φ| < 1e-30, where exp(-2u) overflows float) the result must only be that small
            check(kind, "hidden (relative)", a[i], hidden[i], phi * bi, Math.abs(phi * bi) < 1e-30 ? 1e-30 : relative);
            check(kind, "dA", a[i], dA[i], dh[i] * der * bi, bound);
            if (dB != null) {
                check(kind, "dB", a[i], dB[i], dh[i] * phi, bound);
            }
        }
        assertTrue(hidden[0] == 0f && hidden[n - 1] == 0f && dA[0] == 0f && dA[n - 1] == 0f, "wrote outside [from, to)");
    }

    /**
     * The float exp the SiLU and GELU-tanh kinds use is within 2 ulp of {@code (float) Math.exp(x)}
     * on every 32nd float of [-87, 88] (67 million values), and is {@code Math.exp} itself outside,
     * where it underflows, overflows or is NaN.
     */
    @Test
    void floatExpIsWithinTwoUlpEverywhere() {
        double worst = 0;
        float worstAt = 0;
        int from = Float.floatToRawIntBits(88f);
        for (int bits = 0; bits <= from; bits += 32) {
            for (float x : new float[] {Float.intBitsToFloat(bits), -Float.intBitsToFloat(bits)}) {
                if (x < -87f) {
                    continue;
                }
                float want = (float) Math.exp(x);
                double ulps = Math.abs(ExpertActivation.exp(x) - (double) want) / Math.ulp(want);
                if (ulps > worst) {
                    worst = ulps;
                    worstAt = x;
                }
            }
        }
        assertTrue(worst <= 2, "exp(" + worstAt + ") is " + worst + " ulp away");
        for (float x : new float[] {-87.5f, -100f, -104f, -200f, 88.5f, 88.72f, 89f, Float.NEGATIVE_INFINITY,
                Float.POSITIVE_INFINITY, Float.NaN}) {
            assertEquals(Float.floatToRawIntBits((float) Math.exp(x)), Float.floatToRawIntBits(ExpertActivation.exp(x)), "exp(" + x + ")");
        }
    }

    /** Forward into another buffer from an offset (training's hidden blocks) gives the bits of forward in place. */
    @ParameterizedTest
    @EnumSource(Activation.class)
    void forwardIntoAnOffsetGivesTheSameBits(Activation kind) {
        int n = 301;
        float[] a = ramp(n, 6f);
        float[] b = kind.isGated() ? gates(n) : null;
        float[] inPlace = a.clone();
        ExpertActivation.forward(kind, inPlace, b, 3, n - 2, inPlace, 3);
        float[] block = new float[n];
        ExpertActivation.forward(kind, a, b, 3, n - 2, block, 0);
        for (int i = 3; i < n - 2; i++) {
            assertEquals(Float.floatToRawIntBits(inPlace[i]), Float.floatToRawIntBits(block[i - 3]), kind + " element " + i);
        }
    }

    /** Backward in place (dA over a, dB over b, dHidden at another offset), as CpuLayer runs it: the same bits. */
    @ParameterizedTest
    @EnumSource(Activation.class)
    void backwardInPlaceGivesTheSameBits(Activation kind) {
        int n = 301;
        float[] a = ramp(n, 6f);
        float[] b = kind.isGated() ? gates(n) : null;
        float[] dh = new float[n + 7];
        for (int i = 0; i < n; i++) {
            dh[7 + i] = 0.75f - 1.5f * ((i * 104729) % n) / n;
        }
        float[] dA = new float[n];
        float[] dB = b == null ? null : new float[n];
        ExpertActivation.backward(kind, a, b, 0, n, dh, 7, dA, dB);
        float[] aInPlace = a.clone();
        float[] bInPlace = b == null ? null : b.clone();
        ExpertActivation.backward(kind, aInPlace, bInPlace, 0, n, dh, 7, aInPlace, bInPlace);
        assertArrayEquals(dA, aInPlace, kind + " dA");
        if (b != null) {
            assertArrayEquals(dB, bInPlace, kind + " dB");
        }
    }

    /**
     * ReLU without a branch is still the reference's {@code a > 0 ? a : 0} and {@code a > 0 ? 1 : 0}
     * bit for bit, at the values where a sign test could differ: signed zeros, NaN, infinities,
     * subnormals; and backward passes dHidden's own bits (-0, NaN) where a > 0.
     */
    @Test
    void reluIsTheReferencesSelectAtEverySpecialValue() {
        float[] a = {0f, -0f, Float.NaN, -Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.MIN_VALUE,
            -Float.MIN_VALUE, Float.MIN_NORMAL, -Float.MAX_VALUE, Float.MAX_VALUE, 1.5f, -1.5f};
        float[] hidden = new float[a.length];
        ExpertActivation.forwardScalar(Activation.RELU, a, null, 0, a.length, hidden, 0);
        float[] dh = {-0f, Float.NaN, 3f, -2f, -0f, 5f, Float.NaN, 7f, -0f, 9f, Float.NaN, -4f, 6f};
        float[] dA = new float[a.length];
        ExpertActivation.backwardScalar(Activation.RELU, a, null, 0, a.length, dh, 0, dA, null);
        for (int i = 0; i < a.length; i++) {
            float want = (float) ExpertNetwork.activate(Activation.RELU, a[i]);
            float wantDa = ExpertNetwork.derivative(Activation.RELU, a[i]) == 1 ? dh[i] : 0f;
            int index = i;
            assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(hidden[i]),
                    () -> "ReLU(" + a[index] + ") = " + hidden[index] + " but the reference gives " + want);
            assertEquals(Float.floatToRawIntBits(wantDa), Float.floatToRawIntBits(dA[i]),
                    () -> "ReLU backward at a = " + a[index] + ", dHidden = " + dh[index] + ": " + dA[index] + ", expected " + wantDa);
        }
    }

    /** n evenly spaced pre-activations from -limit to limit. */
    private static float[] ramp(int n, float limit) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = -limit + 2 * limit * i / (n - 1);
        }
        return a;
    }

    /** n gate values in [-1.5, 1.5), in a scrambled order. */
    private static float[] gates(int n) {
        float[] b = new float[n];
        for (int i = 0; i < n; i++) {
            b[i] = 1.5f - 3f * ((i * 7919) % n) / n;
        }
        return b;
    }

    private static void check(Activation kind, String what, float a, float actual, double expected, double bound) {
        assertTrue(Math.abs(actual - expected) <= bound,
                () -> kind + " " + what + " at a = " + a + ": " + actual + " but the reference gives " + expected + " (bound " + bound + ")");
    }
}

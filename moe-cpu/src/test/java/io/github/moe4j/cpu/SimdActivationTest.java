package io.github.moe4j.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.Noise;
import org.apache.commons.rng.UniformRandomProvider;
import org.apache.commons.rng.sampling.distribution.ZigguratSampler;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * {@link SimdActivation} gives the scalar loops' results bit for bit, forward and backward, gated or
 * not, in place (as moe-cpu calls them) or not, on inputs of every size that reaches the exponential's range limits, its
 * special values (NaN, infinities, signed zeros, subnormals) and ranges that do not start or end on
 * a whole vector. The build runs this class in the {@code vector-blas} surefire execution, whose JVM
 * has {@code jdk.incubator.vector}; the other executions leave it out.
 */
class SimdActivationTest {
    private static final float[] SPECIAL = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 0f, -0f,
        Float.MIN_VALUE, -Float.MIN_VALUE, Float.MIN_NORMAL, 87f, -87f, 88f, -88f, 88.1f, -87.1f, 44f, -44f, 43.5f, 100f, -100f};

    @BeforeEach
    void simdIsOn() {
        assumeTrue(ExpertActivation.SIMD, "the JVM has no jdk.incubator.vector (run with --add-modules jdk.incubator.vector)");
        System.out.println("[moe-cpu] " + ExpertActivation.description());
    }

    @ParameterizedTest
    @EnumSource(value = Activation.class, names = {"RELU", "SILU", "SWIGLU", "GELU_TANH", "GEGLU_TANH"})
    void forwardAndBackwardAreBitIdenticalToTheScalarLoops(Activation kind) {
        UniformRandomProvider random = Noise.generator(kind.ordinal(), 0, 0);
        ZigguratSampler.NormalizedGaussian normal = ZigguratSampler.NormalizedGaussian.of(random);
        int vectors = 0;
        for (double scale : new double[] {1, 4, 40}) {
            for (int n : new int[] {1, 15, 16, 17, 63, 200, 1031}) {
                float[] a = values(random, normal, n, scale);
                float[] b = kind.isGated() ? values(random, normal, n, 2) : null;
                float[] dh = values(random, normal, n + 3, 1);
                int from = n > 2 ? 1 : 0;
                int to = n > 2 ? n - 1 : n;
                vectors += (to - from) / 16;

                float[] want = new float[n];
                float[] got = new float[n];
                ExpertActivation.forwardScalar(kind, a, b, from, to, want, from);
                SimdActivation.forward(kind, a, b, from, to, got, from);
                assertBitIdentical(kind + " forward, n = " + n + ", scale " + scale, want, got, a);
                // in place, as moe-cpu's inference blocks call it (hidden over a)
                float[] wantInPlace = a.clone();
                System.arraycopy(want, from, wantInPlace, from, to - from);
                float[] inPlace = a.clone();
                SimdActivation.forward(kind, inPlace, b, from, to, inPlace, from);
                assertBitIdentical(kind + " forward in place, n = " + n + ", scale " + scale, wantInPlace, inPlace, a);

                // into another buffer from its start, as training's hidden blocks are written
                float[] shifted = new float[to - from + 5];
                SimdActivation.forward(kind, a, b, from, to, shifted, 5);
                float[] wantShifted = new float[to - from + 5];
                ExpertActivation.forwardScalar(kind, a, b, from, to, wantShifted, 5);
                assertBitIdentical(kind + " forward into an offset, n = " + n + ", scale " + scale, wantShifted, shifted, a);
                for (int i = from; i < to; i++) {
                    assertEquals(Float.floatToIntBits(want[i]), Float.floatToIntBits(shifted[5 + i - from]),
                            kind + " forward into an offset, element " + i);
                }

                float[] wantA = a.clone();
                float[] wantB = b == null ? null : b.clone();
                float[] gotA = a.clone();
                float[] gotB = b == null ? null : b.clone();
                // in place, as moe-cpu calls it (dA over a, dB over b), with dHidden offset by 3
                ExpertActivation.backwardScalar(kind, wantA, wantB, from, to, dh, from + 3, wantA, wantB);
                SimdActivation.backward(kind, gotA, gotB, from, to, dh, from + 3, gotA, gotB);
                assertBitIdentical(kind + " backward dA, n = " + n + ", scale " + scale, wantA, gotA, a);
                if (b != null) {
                    assertBitIdentical(kind + " backward dB, n = " + n + ", scale " + scale, wantB, gotB, a);
                }
            }
        }
        assertTrue(vectors > 100, "the ranges must hold whole vectors, not only the scalar tail: " + vectors);
    }

    /** Gaussian values times {@code scale}, with the special values planted at random places. */
    private static float[] values(UniformRandomProvider random, ZigguratSampler.NormalizedGaussian normal, int n, double scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (scale * normal.sample());
        }
        for (int s = 0; s < SPECIAL.length && n > 40; s++) {
            v[random.nextInt(n)] = SPECIAL[s];
        }
        return v;
    }

    private static void assertBitIdentical(String what, float[] want, float[] got, float[] a) {
        for (int i = 0; i < want.length; i++) {
            int w = Float.floatToIntBits(want[i]);
            int g = Float.floatToIntBits(got[i]);
            int index = i;
            assertEquals(w, g, () -> what + ": element " + index + " (a = " + a[index] + "): scalar " + want[index] + ", SIMD "
                    + got[index]);
        }
    }
}

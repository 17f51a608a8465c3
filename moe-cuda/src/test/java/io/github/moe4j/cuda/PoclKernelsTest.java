package io.github.moe4j.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Presets;
import io.github.moe4j.api.Support;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The portable GEMM against a naive double product; what the backend declines; and proof that
 * {@link ForwardAgreement} fails a backend that is subtly wrong. On the JOCL test runtime.
 */
class PoclKernelsTest extends PoclBackendTest {
    @Override
    boolean checksAllocationsOnClose() {
        return false;
    }

    /**
     * gemm_tiled at offsets and at sizes off the 16-wide tile agrees with the naive product within
     * \( \gamma_k \sum_l |a_{il} b_{lj}| \) (k = inner length, any summation order), and leaves the
     * elements around C untouched.
     */
    @ParameterizedTest(name = "m={0} n={1} k={2} transA={3} transB={4} accumulate={5}")
    @CsvSource({"1,1,1,false,false,false", "16,16,16,false,false,false", "17,15,33,false,false,false", "3,40,1,false,false,false",
            "33,2,17,false,false,false", "5,7,0,false,false,false", "17,15,33,true,false,false", "17,15,33,false,true,false",
            "17,15,33,true,true,false", "18,5,21,true,false,true", "4,19,35,false,true,true", "5,7,0,false,false,true"})
    void portableGemmMatchesTheNaiveProduct(int m, int n, int k, boolean transA, boolean transB, boolean accumulate) {
        DeviceRuntime rt = backend.runtime();
        SplittableRandom rnd = new SplittableRandom(m * 1000 + n * 10 + k + (transA ? 7 : 0) + (transB ? 13 : 0));
        float[] a = new float[2 + m * k];
        float[] b = new float[3 + k * n];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) rnd.nextDouble(-1, 1);
        }
        for (int i = 0; i < b.length; i++) {
            b[i] = (float) rnd.nextDouble(-1, 1);
        }
        float[] c = new float[1 + m * n + 1];
        for (int i = 0; i < c.length; i++) {
            c[i] = (float) rnd.nextDouble(-1, 1);
        }
        float[] before = c.clone();
        DeviceBuffer da = rt.allocate(4L * a.length);
        DeviceBuffer db = rt.allocate(4L * b.length);
        DeviceBuffer dc = rt.allocate(4L * c.length);
        try {
            rt.copyIn(a, da);
            rt.copyIn(b, db);
            rt.copyIn(c, dc);
            rt.gemm(new DeviceRuntime.GemmOps(transA, transB, accumulate), m, n, k, da, 2, db, 3, dc, 1);
            rt.copyOut(dc, c);
        } finally {
            rt.free(da);
            rt.free(db);
            rt.free(dc);
        }
        assertEquals(before[0], c[0], "element before C was written");
        assertEquals(before[c.length - 1], c[c.length - 1], "element after C was written");
        double u = Math.ulp(1.0f) / 2;
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = accumulate ? before[1 + i * n + j] : 0;
                double abs = Math.abs(s);
                for (int l = 0; l < k; l++) {
                    double p = (double) a[2 + (transA ? l * m + i : i * k + l)] * b[3 + (transB ? j * k + l : l * n + j)];
                    s += p;
                    abs += Math.abs(p);
                }
                double err = Math.abs(c[1 + i * n + j] - s);
                assertTrue(err <= (k + 1) * u * abs, "C[" + i + ", " + j + "] = " + c[1 + i * n + j] + ", naive " + s);
            }
        }
    }

    /**
     * Every router is supported forward and backward: noisy top-k (learned noise or none) and expert
     * choice now say {@link Support#YES}, and so does every preset; only weight tensors too large for
     * 32-bit indexing are declined, with the reason.
     */
    @Test
    void supportsEveryRouterForwardAndBackward() {
        for (MoeConfig c : new MoeConfig[] {Presets.shazeerNoisyTopK(2).modelDim(8).hiddenDim(8).experts(4).build(),
                Presets.expertChoice(1.0).modelDim(8).hiddenDim(8).experts(4).build()}) {
            assertEquals(Support.YES, backend.supports(c), c.router() + ": " + backend.supports(c).reason());
            try (MoeLayer layer = backend.createLayer(c, MoeWeights.random(c, 1));
                 MoeForward f = layer.forward(PoclForwardTest.randomInput(3, 8, 1), ForwardOptions.training(2, 1))) {
                assertArrayEquals(new int[] {3, 8}, layer.backward(f, PoclForwardTest.randomInput(3, 8, 3), Set.of()).input().shape());
            }
        }
        MoeConfig huge = Presets.expertChoice(1.0).modelDim(1 << 12).hiddenDim(1 << 12).experts(1 << 8).build();
        assertFalse(backend.supports(huge).supported());
        assertTrue(backend.supports(huge).reason().contains("32-bit"), backend.supports(huge).reason());
        for (MoeConfig.Builder b : new MoeConfig.Builder[] {Presets.mixtral(), Presets.switchTop1(), Presets.gshardTop2(),
                Presets.stMoe(), Presets.deepSpeedTop1(), Presets.deepSpeedTop2(), Presets.deepSpeedTopK(3)}) {
            MoeConfig c = b.modelDim(8).hiddenDim(8).experts(4).build();
            assertTrue(backend.supports(c).supported(), c + ": " + backend.supports(c).reason());
            assertTrue(backend.supports(c).backward(), c + ": token choice runs backward too");
            assertEquals(Support.YES, backend.supports(c));
        }
    }

    /**
     * The comparison has teeth: weights off by one part in a thousand (far above float32 rounding,
     * far below what a person would notice) make {@link ForwardAgreement} fail.
     */
    @Test
    void agreementCheckFailsAnAlmostRightBackend() {
        MoeConfig config = MoeConfig.builder().modelDim(16).hiddenDim(24).experts(4).router(TokenChoiceRouterConfig.topK(2))
                .capacity(Capacity.dropless()).build();
        MoeWeights w = MoeWeights.random(config, 12);
        float[] wOut = w.wOut().toArray();
        for (int i = 0; i < wOut.length; i++) {
            wOut[i] *= 1.001f;
        }
        MoeWeights skewed = new MoeWeights(w.router(), null, null, w.wIn(), null, Tensor.of(wOut, w.wOut().shape()), null, null);
        Tensor x = PoclForwardTest.randomInput(10, 16, 4);
        try (MoeLayer layer = backend.createLayer(config, skewed)) {
            AssertionError e = assertThrows(AssertionError.class, () -> ForwardAgreement.check(layer, w, x, ForwardOptions.inference()));
            assertTrue(e.getMessage().contains("output["), e.getMessage());
        }
    }
}

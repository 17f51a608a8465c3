package io.github.moe4j.cuda;

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
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The portable GEMM against a naive double product; what the backend declines; and proof that
 * {@link ForwardAgreement} fails a backend that is subtly wrong. On the JOCL test runtime.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PoclKernelsTest {
    private CudaBackend backend;

    @BeforeAll
    void open() {
        backend = PoclSupport.openBackend();
    }

    @BeforeEach
    void requireOpenCl() {
        PoclSupport.assumeOpen(backend);
    }

    @AfterAll
    void close() {
        if (backend != null) {
            backend.close();
        }
    }

    /**
     * gemm_tiled at offsets and at sizes off the 16-wide tile agrees with the naive product within
     * \( \gamma_k \sum_l |a_{il} b_{lj}| \) (k = inner length, any summation order), and leaves the
     * elements around C untouched.
     */
    @ParameterizedTest(name = "m={0} n={1} k={2}")
    @CsvSource({"1,1,1", "16,16,16", "17,15,33", "3,40,1", "33,2,17", "5,7,0"})
    void portableGemmMatchesTheNaiveProduct(int m, int n, int k) {
        DeviceRuntime rt = backend.runtime();
        SplittableRandom rnd = new SplittableRandom(m * 1000 + n * 10 + k);
        float[] a = new float[2 + m * k];
        float[] b = new float[3 + k * n];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) rnd.nextDouble(-1, 1);
        }
        for (int i = 0; i < b.length; i++) {
            b[i] = (float) rnd.nextDouble(-1, 1);
        }
        float[] c = new float[1 + m * n + 1];
        java.util.Arrays.fill(c, 42f);
        DeviceBuffer da = rt.allocate(4L * a.length);
        DeviceBuffer db = rt.allocate(4L * b.length);
        DeviceBuffer dc = rt.allocate(4L * c.length);
        try {
            rt.copyIn(a, da);
            rt.copyIn(b, db);
            rt.copyIn(c, dc);
            rt.gemm(m, n, k, da, 2, db, 3, dc, 1);
            rt.copyOut(dc, c);
        } finally {
            rt.free(da);
            rt.free(db);
            rt.free(dc);
        }
        assertEquals(42f, c[0], "element before C was written");
        assertEquals(42f, c[c.length - 1], "element after C was written");
        double u = Math.ulp(1.0f) / 2;
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                double abs = 0;
                for (int l = 0; l < k; l++) {
                    double p = (double) a[2 + i * k + l] * b[3 + l * n + j];
                    s += p;
                    abs += Math.abs(p);
                }
                double err = Math.abs(c[1 + i * n + j] - s);
                assertTrue(err <= (k + 1) * u * abs, "C[" + i + ", " + j + "] = " + c[1 + i * n + j] + ", naive " + s);
            }
        }
    }

    /** Noisy top-k and expert choice are declined with a reason that says what to use instead. */
    @Test
    void declinesWhatIsNotImplementedWithAnActionableReason() {
        Support noisy = backend.supports(Presets.shazeerNoisyTopK(2).modelDim(8).hiddenDim(8).experts(4).build());
        assertFalse(noisy.supported());
        assertTrue(noisy.reason().contains("noisy top-k") && noisy.reason().contains("reference"), noisy.reason());
        Support ec = backend.supports(Presets.expertChoice(1.0).modelDim(8).hiddenDim(8).experts(4).build());
        assertFalse(ec.supported());
        assertTrue(ec.reason().contains("expert-choice"), ec.reason());
        MoeConfig noisyConfig = Presets.shazeerNoisyTopK(2).modelDim(8).hiddenDim(8).experts(4).build();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> backend.createLayer(noisyConfig, MoeWeights.random(noisyConfig, 1)));
        assertTrue(e.getMessage().contains("noisy top-k"), e.getMessage());
        for (MoeConfig.Builder b : new MoeConfig.Builder[] {Presets.mixtral(), Presets.switchTop1(), Presets.gshardTop2(),
                Presets.stMoe(), Presets.deepSpeedTop1(), Presets.deepSpeedTop2(), Presets.deepSpeedTopK(3)}) {
            MoeConfig c = b.modelDim(8).hiddenDim(8).experts(4).build();
            assertTrue(backend.supports(c).supported(), c + ": " + backend.supports(c).reason());
            assertFalse(backend.supports(c).backward(), "backward is not written yet, so supports() must say so");
        }
    }

    /** Backward is not implemented: it says so instead of returning something. */
    @Test
    void backwardSaysItIsNotImplemented() {
        MoeConfig config = MoeConfig.builder().modelDim(4).hiddenDim(4).experts(2).router(TokenChoiceRouterConfig.topK(1)).build();
        try (MoeLayer layer = backend.createLayer(config, MoeWeights.random(config, 1));
             MoeForward f = layer.forward(PoclForwardTest.randomInput(3, 4, 1), ForwardOptions.inference())) {
            UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                    () -> layer.backward(f, Tensor.zeros(3, 4), Set.of()));
            assertTrue(e.getMessage().contains("backward is not implemented by the cuda backend"), e.getMessage());
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

package io.github.moe4j.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.ExpertChoiceRouterConfig;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeGradients;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * How the expert stage calls GEMMs, counted at the {@link DeviceRuntime} interface (a
 * {@link FaultyRuntime} recording every call over the JOCL test runtime): with a finite capacity
 * (factor, fixed, expert choice) each expert-stage GEMM, forward and backward, is one strided-batched
 * call over the E experts on the [E, G·C] row layout; dropless makes one GEMM per expert. And the
 * batched layout's empty slots contribute exactly nothing: with a capacity that drops nothing, the
 * batched and the per-expert layouts give bit-identical outputs and gradients.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ExpertGemmBatchingTest {
    private FaultyRuntime runtime;
    private CudaBackend backend;

    @BeforeAll
    void open() {
        CudaBackend probe = PoclSupport.openBackend();
        if (probe != null) {
            probe.close();
            runtime = new FaultyRuntime(OpenClRuntime.open());
            backend = new CudaBackend(runtime);
        }
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

    private static MoeConfig.Builder small(Activation act) {
        return MoeConfig.builder().modelDim(7).hiddenDim(9).experts(4).activation(act).expertBias(true);
    }

    /** The forward's and then the backward's GEMM calls (the backward reruns the forward first). */
    private List<List<String>> calls(MoeConfig config, int tokens, ForwardOptions options) {
        MoeWeights w = MoeWeights.random(config, 5);
        Tensor x = PoclForwardTest.randomInput(tokens, config.modelDim(), 6);
        Tensor dY = PoclForwardTest.randomInput(tokens, config.modelDim(), 8);
        try (MoeLayer layer = backend.createLayer(config, w)) {
            runtime.clearGemmCalls();
            MoeForward f = layer.forward(x, options);
            List<String> forward = runtime.gemmCalls();
            runtime.clearGemmCalls();
            layer.backward(f, dY, Set.of());
            List<String> backward = runtime.gemmCalls();
            f.close();
            return List.of(forward, backward);
        }
    }

    /** Top-2 with a capacity factor, ReLU: two batched forward GEMMs, four batched backward ones. */
    @Test
    void capacityFactorBatchesEveryExpertGemm() {
        MoeConfig config = small(Activation.RELU).router(TokenChoiceRouterConfig.topK(2)).capacity(Capacity.factor(1.0)).build();
        int tokens = 13;
        int r = (int) Math.min(config.capacityPerExpert(tokens), tokens * 2L);
        List<List<String>> c = calls(config, tokens, ForwardOptions.inference());
        List<String> forward = List.of("gemm 13,4,7", "batched " + r + ",9,7 x 4", "batched " + r + ",7,9 x 4");
        assertEquals(forward, c.get(0));
        List<String> backward = new ArrayList<>(forward);
        backward.addAll(List.of("batched " + r + ",9,7 x 4", "batched " + r + ",7,9 x 4", "batched 7,9," + r + " x 4",
                "batched 9,7," + r + " x 4", "gemm 13,7,4", "gemm 7,4,13"));
        assertEquals(backward, c.get(1));
    }

    /** SwiGLU, a fixed capacity and 2 groups: the gate GEMM and its gradients are batched too, G·C rows per expert. */
    @Test
    void fixedCapacityWithGroupsBatchesTheGatedGemms() {
        MoeConfig config = small(Activation.SWIGLU).router(TokenChoiceRouterConfig.topK(2)).capacity(Capacity.fixed(3)).build();
        int r = 2 * 3;
        List<List<String>> c = calls(config, 14, ForwardOptions.inference().withGroups(2));
        String in = "batched " + r + ",9,7 x 4";
        String out = "batched " + r + ",7,9 x 4";
        assertEquals(List.of("gemm 14,4,7", in, in, out), c.get(0));
        assertEquals(List.of("gemm 14,4,7", in, in, out, in, out, out, "batched 7,9," + r + " x 4", "batched 7,9," + r + " x 4",
                "batched 9,7," + r + " x 4", "gemm 14,7,4", "gemm 7,4,14"), c.get(1));
    }

    /** Expert choice: each expert's C best tokens per group are its rows; one batched call per GEMM. */
    @Test
    void expertChoiceBatchesEveryExpertGemm() {
        MoeConfig config = small(Activation.GELU).router(new ExpertChoiceRouterConfig()).capacity(Capacity.fixed(5)).build();
        List<List<String>> c = calls(config, 11, ForwardOptions.inference());
        assertEquals(List.of("gemm 11,4,7", "batched 5,9,7 x 4", "batched 5,7,9 x 4"), c.get(0));
        assertEquals(List.of("batched 5,9,7 x 4", "batched 5,7,9 x 4", "batched 7,9,5 x 4", "batched 9,7,5 x 4"),
                c.get(1).subList(3, 7));
    }

    /** Dropless: one GEMM per expert with its own kept rows (they add up to T·k), no batched call. */
    @Test
    void droplessRunsOneGemmPerExpert() {
        MoeConfig config = small(Activation.RELU).router(TokenChoiceRouterConfig.topK(2)).capacity(Capacity.dropless()).build();
        List<String> forward = calls(config, 13, ForwardOptions.inference()).get(0);
        assertEquals(1 + 2 * 4, forward.size(), forward.toString());
        assertEquals("gemm 13,4,7", forward.get(0));
        int rows = 0;
        for (int i = 1; i <= 4; i++) {
            String[] mnk = forward.get(i).substring("gemm ".length()).split(",");
            assertTrue(forward.get(i).startsWith("gemm ") && mnk[1].equals("9") && mnk[2].equals("7"), forward.get(i));
            rows += Integer.parseInt(mnk[0]);
            assertEquals("gemm " + mnk[0] + ",7,9", forward.get(i + 4));
        }
        assertEquals(13 * 2, rows);
    }

    /**
     * With a capacity that drops nothing (fixed C = T), the batched layout has empty slots (E·C rows
     * for T·k assignments) yet gives the dropless layer's outputs and gradients bit for bit, with
     * expert biases and GELU, where an empty slot computed as data would give a nonzero row.
     */
    @Test
    void emptySlotsContributeExactlyNothing() {
        int tokens = 10;
        MoeConfig.Builder b = small(Activation.GELU).router(TokenChoiceRouterConfig.topK(2));
        MoeConfig batched = b.capacity(Capacity.fixed(tokens)).build();
        MoeConfig dropless = b.capacity(Capacity.dropless()).build();
        MoeWeights w = MoeWeights.random(batched, 21);
        Tensor x = PoclForwardTest.randomInput(tokens, 7, 22);
        Tensor dY = PoclForwardTest.randomInput(tokens, 7, 23);
        try (MoeLayer lb = backend.createLayer(batched, w); MoeLayer ld = backend.createLayer(dropless, w)) {
            runtime.clearGemmCalls();
            MoeForward fb = lb.forward(x, ForwardOptions.inference());
            assertTrue(runtime.gemmCalls().contains("batched 10,9,7 x 4"), runtime.gemmCalls().toString());
            MoeForward fd = ld.forward(x, ForwardOptions.inference());
            assertArrayEquals(fd.routing().experts2d(), fb.routing().experts2d());
            int kept = 0;
            for (int n : fb.routing().kept()) {
                kept += n;
            }
            assertEquals(2 * tokens, kept, "nothing dropped, so half of the 4 * 10 batched rows are empty slots");
            assertArrayEquals(fd.output().toArray(), fb.output().toArray());
            MoeGradients gb = lb.backward(fb, dY, Set.of());
            MoeGradients gd = ld.backward(fd, dY, Set.of());
            assertArrayEquals(gd.input().toArray(), gb.input().toArray(), "dInput");
            assertArrayEquals(gd.router().toArray(), gb.router().toArray(), "dRouter");
            assertArrayEquals(gd.wIn().toArray(), gb.wIn().toArray(), "dWIn");
            assertArrayEquals(gd.wOut().toArray(), gb.wOut().toArray(), "dWOut");
            assertArrayEquals(gd.bIn().toArray(), gb.bIn().toArray(), "dBIn");
            assertArrayEquals(gd.bOut().toArray(), gb.bOut().toArray(), "dBOut");
            fb.close();
            fd.close();
        }
    }
}

package io.github.moe4j.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.ExpertChoiceRouterConfig;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.Freeze;
import io.github.moe4j.api.LossWeights;
import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeBackends;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeGradients;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.Tensor;
import java.util.EnumSet;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The CPU backend's own promises beyond the conformance suite: thread-count independence, buffer reuse, discovery, device(). */
class CpuBackendTest {

    /** Many rows per expert (several row blocks of CpuLayer.ROW_BLOCK), gated experts with biases, capacity drops, losses. */
    private static MoeConfig config() {
        return MoeConfig.builder().modelDim(24).hiddenDim(300).experts(4).activation(Activation.SWIGLU)
                .capacity(Capacity.factor(2.0)).losses(LossWeights.of().aux(0.01).z(0.001))
                .routerBias(true).expertBias(true).build();
    }

    private static Tensor random(SplittableRandom rnd, int... shape) {
        int n = 1;
        for (int s : shape) {
            n *= s;
        }
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (rnd.nextDouble() * 2 - 1);
        }
        return Tensor.of(v, shape);
    }

    private record Result(Tensor y, MoeGradients g) {}

    /** Output columns of a weight-gradient task in these tests: few, so that d = 24 and h = 300 are cut into several tasks. */
    private static final int NARROW = 16;

    private static Result run(CpuBackend backend, MoeConfig c, MoeWeights w, Tensor x, Tensor dy, int colBlock) {
        try (MoeLayer layer = backend.createLayer(c, w, colBlock); MoeForward f = layer.forward(x, ForwardOptions.training(5, 1).withGroups(2))) {
            return new Result(f.output(), layer.backward(f, dy, Set.of()));
        }
    }

    @Test
    void resultsAreBitIdenticalWhateverTheThreadCount() {
        MoeConfig c = config();
        MoeWeights w = MoeWeights.random(c, 3);
        SplittableRandom rnd = new SplittableRandom(9);
        Tensor x = random(rnd, 2400, 24);
        Tensor dy = random(rnd, 2400, 24);
        Result one = sameOnOneAndThreeThreads(c, w, x, dy);
        try (CpuBackend b = new CpuBackend(1); MoeLayer layer = b.createLayer(c, w);
             MoeForward f = layer.forward(x, ForwardOptions.training(5, 1).withGroups(2))) {
            int[] kept = f.routing().kept();
            assertTrue(java.util.Arrays.stream(kept).max().orElse(0) > CpuLayer.ROW_BLOCK,
                    "the case must cut an expert into several row blocks: kept " + java.util.Arrays.toString(kept));
        }
        assertNotNull(one.g().wGate());
        assertNotNull(one.g().bIn());
    }

    /**
     * Cutting the weight gradients into tasks of fewer columns changes which GEMM call computes an
     * element, and OpenBLAS may then sum its terms in another order: the gradients with {@value #NARROW}
     * columns per task agree with those of {@link CpuLayer#COL_BLOCK} (one task per weight here) to
     * float32 rounding, 1e-5 of each tensor's largest value; a task that wrote the wrong columns
     * would be off by the whole value. The output, the biases' gradients and the input's and router's
     * gradients do not involve those tasks and stay bit-identical.
     */
    @Test
    void narrowWeightGradientTasksGiveTheSameGradients() {
        MoeConfig c = config();
        MoeWeights w = MoeWeights.random(c, 3);
        SplittableRandom rnd = new SplittableRandom(10);
        Tensor x = random(rnd, 600, 24);
        Tensor dy = random(rnd, 600, 24);
        try (CpuBackend b = new CpuBackend(2)) {
            Result narrow = run(b, c, w, x, dy, NARROW);
            Result wide = run(b, c, w, x, dy, CpuLayer.COL_BLOCK);
            assertEquals(wide.y(), narrow.y(), "output");
            assertClose(wide.g().wIn(), narrow.g().wIn(), "wIn");
            assertClose(wide.g().wGate(), narrow.g().wGate(), "wGate");
            assertClose(wide.g().wOut(), narrow.g().wOut(), "wOut");
            assertEquals(wide.g().bIn(), narrow.g().bIn(), "bIn");
            assertEquals(wide.g().bOut(), narrow.g().bOut(), "bOut");
            assertEquals(wide.g().input(), narrow.g().input(), "input");
            assertEquals(wide.g().router(), narrow.g().router(), "router");
        }
    }

    private static void assertClose(Tensor want, Tensor got, String name) {
        float[] a = want.toArray();
        float[] b = got.toArray();
        double scale = 0;
        for (float v : a) {
            scale = Math.max(scale, Math.abs(v));
        }
        double allowed = 1e-5 * scale;
        for (int i = 0; i < a.length; i++) {
            int at = i;
            assertTrue(Math.abs(a[i] - b[i]) <= allowed, () -> name + "[" + at + "] = " + b[at] + " but " + a[at] + " was expected, within " + allowed);
        }
    }

    /** Runs the call on 1 and on 3 threads, asserts that output and gradients are bit-identical, and returns the first. */
    private static Result sameOnOneAndThreeThreads(MoeConfig c, MoeWeights w, Tensor x, Tensor dy) {
        Result one;
        Result three;
        try (CpuBackend b = new CpuBackend(1)) {
            one = run(b, c, w, x, dy, NARROW);
        }
        try (CpuBackend b = new CpuBackend(3)) {
            three = run(b, c, w, x, dy, NARROW);
        }
        assertEquals(one.y(), three.y(), "output, " + c.router());
        assertEquals(one.g(), three.g(), "gradients, " + c.router());
        return one;
    }

    /**
     * The router's own loops (logit and weight-gradient SGEMMs in several token and dimension blocks,
     * expert choice over the pool) for the two routers the test above does not use: noisy top-k with
     * learned noise and its importance and load losses, and expert choice.
     */
    @Test
    void noisyAndExpertChoiceRoutersAreBitIdenticalWhateverTheThreadCount() {
        int dims = 2 * CpuRouter.DIM_BLOCK + 8;
        int tokens = 2 * CpuRouter.TOKEN_BLOCK + 88;
        MoeConfig noisy = MoeConfig.builder().modelDim(dims).hiddenDim(16).experts(6).router(NoisyTopKRouterConfig.of(2))
                .losses(LossWeights.of().z(0.001).importance(0.01).load(0.01)).build();
        MoeConfig expertChoice = MoeConfig.builder().modelDim(dims).hiddenDim(16).experts(6)
                .router(new ExpertChoiceRouterConfig()).capacity(Capacity.factor(1.5)).losses(LossWeights.of().z(0.001))
                .routerBias(true).build();
        for (MoeConfig c : new MoeConfig[] {noisy, expertChoice}) {
            SplittableRandom rnd = new SplittableRandom(13);
            Result one = sameOnOneAndThreeThreads(c, MoeWeights.random(c, 12), random(rnd, tokens, dims), random(rnd, tokens, dims));
            assertNotNull(one.g().router(), "router gradient, " + c.router());
            assertEquals(c == noisy, one.g().noiseRouter() != null, "noise router gradient, " + c.router());
        }
    }

    @Test
    void reusedBuffersGiveTheSameResultsAndKeepAnOpenForwardIntact() {
        MoeConfig c = config();
        MoeWeights w = MoeWeights.random(c, 4);
        SplittableRandom rnd = new SplittableRandom(10);
        Tensor x1 = random(rnd, 200, 24);
        Tensor x2 = random(rnd, 300, 24);
        Tensor dy = random(rnd, 200, 24);
        try (CpuBackend b = new CpuBackend(2); MoeLayer layer = b.createLayer(c, w)) {
            MoeForward first = layer.forward(x1, ForwardOptions.inference());
            MoeGradients fresh = layer.backward(first, dy, Set.of());
            // a second forward while the first is open must not overwrite the first's activations
            MoeForward second = layer.forward(x2, ForwardOptions.inference());
            assertEquals(fresh, layer.backward(first, dy, Set.of()));
            second.close();
            first.close();
            // the next forward takes a returned workspace; its results are those of a fresh one
            try (MoeForward again = layer.forward(x1, ForwardOptions.inference())) {
                assertEquals(first.output(), again.output());
                assertEquals(fresh, layer.backward(again, dy, Set.of()));
            }
            assertThrows(IllegalStateException.class, () -> layer.backward(first, dy, Set.of()));
        }
    }

    /**
     * Backward turns a training forward's activations into gradients in place, with no scratch; an
     * inference forward keeps none. A second backward, or a backward after inference, computes them again: same bits.
     */
    @Test
    void backwardAfterInferenceOrASecondTimeRecomputesTheSameActivations() {
        MoeGradients kept;
        MoeConfig c = config(); // no router noise: training and inference route alike
        MoeWeights w = MoeWeights.random(c, 6);
        SplittableRandom rnd = new SplittableRandom(12);
        Tensor x = random(rnd, 700, 24);
        Tensor dy = random(rnd, 700, 24);
        try (CpuBackend b = new CpuBackend(2); MoeLayer layer = b.createLayer(c, w)) {
            try (MoeForward training = layer.forward(x, ForwardOptions.training(5, 1))) {
                kept = layer.backward(training, dy, Set.of());
                assertEquals(kept, layer.backward(training, dy, Set.of()), "second backward of a training forward");
            }
            // training keeps its activations in the workspace and backward spends them in place: no scratch
            assertEquals(0, ((CpuLayer) layer).scratchBlocks(), "scratch blocks after training calls");
            try (MoeForward inference = layer.forward(x, ForwardOptions.inference())) {
                assertEquals(kept, layer.backward(inference, dy, Set.of()), "backward of an inference forward");
            }
        }
        try (CpuBackend b = new CpuBackend(2); MoeLayer layer = b.createLayer(c, w); MoeForward inference = layer.forward(x,
                ForwardOptions.inference())) {
            // a new layer's inference forward has no activation buffers to reuse: it computes its blocks in scratch
            assertTrue(((CpuLayer) layer).scratchBlocks() > 0, "scratch blocks after an inference forward");
            // nor a buffer of every row's input: each block gathers its rows into scratch
            assertNull(((CpuForward) inference).workspace().x, "rows' inputs kept by an inference forward");
            assertEquals(kept, layer.backward(inference, dy, Set.of()), "backward of a new layer's inference forward");
        }
    }

    @Test
    void frozenGroupsGetNoGradient() {
        MoeConfig c = config();
        MoeWeights w = MoeWeights.random(c, 5);
        SplittableRandom rnd = new SplittableRandom(11);
        Tensor x = random(rnd, 50, 24);
        Tensor dy = random(rnd, 50, 24);
        try (CpuBackend b = new CpuBackend(2); MoeLayer layer = b.createLayer(c, w);
             MoeForward f = layer.forward(x, ForwardOptions.inference())) {
            MoeGradients all = layer.backward(f, dy, Set.of());
            MoeGradients experts = layer.backward(f, dy, EnumSet.of(Freeze.EXPERTS));
            MoeGradients router = layer.backward(f, dy, EnumSet.of(Freeze.ROUTER));
            assertNull(experts.wIn());
            assertNull(experts.wGate());
            assertNull(experts.wOut());
            assertNull(experts.bIn());
            assertNull(experts.bOut());
            assertEquals(all.router(), experts.router());
            assertNull(router.router());
            assertNull(router.routerBias());
            assertEquals(all.wOut(), router.wOut());
            assertEquals(all.input(), experts.input());
            assertEquals(all.input(), router.input());
        }
    }

    @Test
    void isFoundByServiceLoaderAndPreferredOverTheReference() {
        MoeBackends.Description cpu = MoeBackends.describe().stream().filter(d -> d.name().equals("cpu")).findFirst().orElseThrow();
        assertEquals(200, cpu.priority());
        assertTrue(cpu.availability().available(), cpu.availability().reason());
        try (MoeBackend best = MoeBackends.best()) {
            assertEquals("cpu", best.name());
        }
    }

    @Test
    void deviceSaysTheThreadsAndWhichBlasRunsTheGemms() {
        try (CpuBackend b = new CpuBackend(3)) {
            String device = b.device();
            String arch = System.getProperty("os.arch").equals("amd64") ? "x86_64" : System.getProperty("os.arch");
            assertTrue(device.startsWith("CPU " + arch + ", 3 threads, BLAS: " + b.blasImplementation()), device);
            // a fallback is never silent: without a native BLAS, device() carries the notice
            assertEquals(!b.nativeBlas(), device.contains("no native BLAS could be loaded"), device);
            // and it says whether the activation runs on the Vector API
            assertTrue(device.contains(ExpertActivation.SIMD ? "activation: SIMD (Vector API" : "activation: scalar"), device);
            System.out.println("[moe-cpu] device: " + device);
        }
    }

    @Test
    void rejectsABadThreadCount() {
        assertThrows(IllegalArgumentException.class, () -> new CpuBackend(0));
    }
}

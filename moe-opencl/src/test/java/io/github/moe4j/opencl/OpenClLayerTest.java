package io.github.moe4j.opencl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.AuxNormalization;
import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.LossWeights;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeGradients;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.NonFiniteException;
import io.github.moe4j.api.Priority;
import io.github.moe4j.api.Routing;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import io.github.moe4j.reference.ReferenceForward;
import io.github.moe4j.reference.ReferenceLayer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The layer's own properties: GEMM versions, reproducibility, GC moves, SPEC §13, edge cases. */
class OpenClLayerTest {

    /**
     * The tiled GEMMs (forward and backward, experts and router) agree with the naive ones, the debugging baseline, on
     * random token-choice, noisy top-k and expert-choice cases: routing exactly; the output within a few u of its
     * largest term; every gradient within {@link GradientTolerance}'s float32 allowance. Both sum the same products
     * in the same order (the tiles pad with zeros), so only FMA contraction may differ; a tiling bug (a wrong index,
     * a missing pad) is far outside either bound.
     */
    @Test
    void tiledGemmMatchesNaiveGemm() {
        OpenClBackend backend = OpenClTestSupport.backend();
        List<MoeCase> cases = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            cases.add(MoeCase.random(0x7111edL + i));
        }
        for (int i = 0; i < 6; i++) {
            cases.add(MoeCase.randomNoisy(0x7112edL + i));
            cases.add(MoeCase.randomExpertChoice(0x7113edL + i));
        }
        double worst = 0;
        int identical = 0;
        Map<String, double[]> worstGradient = new LinkedHashMap<>();
        for (MoeCase c : cases) {
            int tokens = c.input().dim(0);
            MoeConfig config = c.config();
            Tensor dy = BackwardMatchesReferenceTest.randomDy(new SplittableRandom(c.seed()), tokens, config.modelDim());
            try (OpenClLayer layer = (OpenClLayer) backend.createLayer(config, c.weights())) {
                layer.useTiledGemm(false);
                MoeForward naive = layer.forward(c.input(), c.options());
                MoeGradients naiveGradients = layer.backward(naive, dy, Set.of());
                layer.useTiledGemm(true);
                MoeForward tiled = layer.forward(c.input(), c.options());
                MoeGradients tiledGradients = layer.backward(tiled, dy, Set.of());
                assertEquals(naive.routing(), tiled.routing(), c.toString());
                float[] a = naive.output().toArray();
                float[] b = tiled.output().toArray();
                float max = 0;
                for (float v : a) {
                    max = Math.max(max, Math.abs(v));
                }
                double n = config.modelDim() + config.hiddenDim() + 4;
                for (int j = 0; j < a.length; j++) {
                    double err = Math.abs(a[j] - b[j]);
                    worst = Math.max(worst, err);
                    assertTrue(err <= n * ForwardMatchesReferenceTest.U * 2 * (Math.abs(a[j]) + max),
                            c + ": output " + j + " naive " + a[j] + " tiled " + b[j]);
                }
                ReferenceForward adopted = new ReferenceLayer(config, c.weights()).forwardWithRouting(c.input(), naive.routing(),
                        c.options());
                double maxZ = BackwardMatchesReferenceTest.maxLogit(config, adopted, tokens);
                double chain = GradientTolerance.chain(config.modelDim(), config.hiddenDim(), tokens, config.experts(),
                        config.choicesPerToken());
                Tensor[] want = {naiveGradients.input(), naiveGradients.router(), naiveGradients.routerBias(),
                    naiveGradients.noiseRouter(), naiveGradients.wIn(), naiveGradients.wGate(), naiveGradients.wOut(),
                    naiveGradients.bIn(), naiveGradients.bOut()};
                Tensor[] got = {tiledGradients.input(), tiledGradients.router(), tiledGradients.routerBias(),
                    tiledGradients.noiseRouter(), tiledGradients.wIn(), tiledGradients.wGate(), tiledGradients.wOut(),
                    tiledGradients.bIn(), tiledGradients.bOut()};
                String[] names = {"input", "router", "routerBias", "noiseRouter", "wIn", "wGate", "wOut", "bIn", "bOut"};
                for (int g = 0; g < names.length; g++) {
                    try {
                        BackwardMatchesReferenceTest.compare(names[g], got[g], want[g] == null ? null : want[g].toDoubleArray(),
                                chain, maxZ, worstGradient);
                    } catch (AssertionError e) {
                        throw new AssertionError(c + ", tiled against naive: " + e.getMessage(), e);
                    }
                }
                identical += naive.output().equals(tiled.output()) && naiveGradients.equals(tiledGradients) ? 1 : 0;
            }
        }
        StringBuilder s = new StringBuilder(String.format("[moe-opencl tests] tiled vs naive GEMM: %d of %d cases bit-identical "
                + "(output and every gradient), worst output difference %.3g; worst gradient difference (fraction of tolerance):",
                identical, cases.size(), worst));
        worstGradient.forEach((k, v) -> s.append(String.format(" %s %.3g (%.3g)", k, v[0], v[1])));
        System.out.println(s);
        assertTrue(worstGradient.containsKey("noiseRouter") && worstGradient.containsKey("wGate"),
                "the cases should reach W_noise and W_gate: " + worstGradient.keySet());
    }

    /** The same input twice gives bit-identical output, routing and losses; so does a forward after the GC has run. */
    @Test
    void sameInputGivesBitIdenticalResultsAcrossGc() {
        MoeCase c = MoeCase.random(424242L);
        try (OpenClLayer layer = (OpenClLayer) OpenClTestSupport.backend().createLayer(c.config(), c.weights())) {
            MoeForward first = layer.forward(c.input(), c.options());
            churnAndCollect();
            MoeForward second = layer.forward(c.input(), c.options());
            assertEquals(first.output(), second.output());
            assertEquals(first.routing(), second.routing());
            assertEquals(first.losses(), second.losses());
        }
    }

    /**
     * Each phase as its own launch with {@code System.gc()} (after allocation churn, so arrays move)
     * between phases gives the one-launch result bit for bit: the layer reads back what a later
     * phase needs, so Aparapi's re-creation of a moved array's buffer from the Java array loses
     * nothing (research java-gpu.md §2.1, GC hazard).
     */
    @Test
    void gcBetweenPhasesChangesNothing() {
        for (long seed : new long[] {1L, 77L, 4096L}) {
            MoeCase c = MoeCase.random(seed);
            try (OpenClLayer layer = (OpenClLayer) OpenClTestSupport.backend().createLayer(c.config(), c.weights())) {
                MoeForward oneLaunch = layer.forward(c.input(), c.options());
                layer.betweenPhases(OpenClLayerTest::churnAndCollect);
                MoeForward stepped = layer.forward(c.input(), c.options());
                layer.betweenPhases(null);
                assertEquals(oneLaunch.output(), stepped.output(), c.toString());
                assertEquals(oneLaunch.routing(), stepped.routing(), c.toString());
                assertEquals(oneLaunch.losses(), stepped.losses(), c.toString());
            }
        }
    }

    private static Object sink;

    private static void churnAndCollect() {
        for (int i = 0; i < 200; i++) {
            sink = new float[1000 + i];
        }
        System.gc();
    }

    /** SPEC §13's worked example: selection with a tie, RENORMALIZE gates, P, the three aux normalisations, L_z, slots at C = 1. */
    @Test
    void specWorkedExample() {
        double[][] z = {{2.0, 1.0, 0.0, -1.0}, {0.5, 2.5, 0.0, 0.1}, {1.0, 1.0, 3.0, 0.0}, {3.0, 0.2, 0.1, 1.0}};
        float[] x = new float[16];
        for (int t = 0; t < 4; t++) {
            for (int e = 0; e < 4; e++) {
                x[t * 4 + e] = (float) z[t][e];
            }
        }
        float[] identity = new float[16];
        for (int i = 0; i < 4; i++) {
            identity[i * 4 + i] = 1f;
        }
        double[] aux = {1.3504589, 1.2624707, 2.5249415};
        for (AuxNormalization norm : AuxNormalization.values()) {
            for (Priority p : new Priority[] {Priority.RANK_MAJOR, Priority.TOKEN_MAJOR}) {
                MoeConfig config = MoeConfig.builder().modelDim(4).hiddenDim(3).experts(4).activation(Activation.RELU)
                        .router(TokenChoiceRouterConfig.topK(2)).capacity(Capacity.fixed(1)).priority(p)
                        .losses(LossWeights.of().aux(1, norm).z(1)).build();
                MoeWeights random = MoeWeights.random(config, 5);
                MoeWeights w = MoeWeights.builder().router(Tensor.of(identity, 4, 4)).wIn(random.wIn()).wOut(random.wOut()).build();
                try (var layer = OpenClTestSupport.backend().createLayer(config, w)) {
                    MoeForward f = layer.forward(Tensor.of(x, 4, 4), ForwardOptions.inference());
                    Routing r = f.routing();
                    assertArrayEquals(new int[] {0, 1, 1, 0, 2, 0, 0, 3}, r.experts2d());
                    int[] slots = p == Priority.RANK_MAJOR ? new int[] {0, -1, 0, -1, 0, -1, -1, 0} : new int[] {0, 0, -1, -1, 0, -1, -1, 0};
                    assertArrayEquals(slots, r.slots(), p.toString());
                    double[] before = {0.7310586, 0.2689414, 0.8807971, 0.1192029, 0.8807971, 0.1192029, 0.8807971, 0.1192029};
                    for (int i = 0; i < 8; i++) {
                        assertEquals(slots[i] >= 0 ? before[i] : 0, r.gates()[i], 1e-6, "gate " + i);
                    }
                    assertEquals(aux[norm.ordinal()], f.losses().aux(), 2e-6, norm.toString());
                    assertEquals(8.6898800, f.losses().z(), 2e-5);
                }
            }
        }
    }

    /** No tokens: empty output and routing, zero losses, no launch. */
    @Test
    void emptyBatch() {
        MoeConfig c = MoeConfig.builder().modelDim(4).hiddenDim(3).experts(3).build();
        try (var layer = OpenClTestSupport.backend().createLayer(c, MoeWeights.random(c, 1))) {
            MoeForward f = layer.forward(Tensor.zeros(0, 4), ForwardOptions.inference());
            assertEquals(0, f.output().size());
            assertEquals(0, f.routing().tokens());
            assertEquals(0.0, f.losses().total());
        }
    }

    /** Capacity zero drops everything: exactly zero output, no crash (no division by a zero tile count on the device). */
    @Test
    void zeroCapacityOutputsExactZeros() {
        MoeConfig c = MoeConfig.builder().modelDim(5).hiddenDim(4).experts(3).capacity(Capacity.fixed(0)).build();
        try (var layer = OpenClTestSupport.backend().createLayer(c, MoeWeights.random(c, 1))) {
            float[] x = new float[20];
            for (int i = 0; i < x.length; i++) {
                x[i] = i - 10;
            }
            MoeForward f = layer.forward(Tensor.of(x, 4, 5), ForwardOptions.inference());
            assertEquals(Tensor.zeros(4, 5), f.output());
            assertEquals(8, f.routing().dropped());
        }
    }

    /** Bad input: wrong width is an IllegalArgumentException naming both shapes; a NaN names its position. */
    @Test
    void badInputIsRejectedWithItsPosition() {
        MoeConfig c = MoeConfig.builder().modelDim(4).hiddenDim(3).experts(3).build();
        try (var layer = OpenClTestSupport.backend().createLayer(c, MoeWeights.random(c, 1))) {
            IllegalArgumentException shape = assertThrows(IllegalArgumentException.class,
                    () -> layer.forward(Tensor.zeros(2, 5), ForwardOptions.inference()));
            assertTrue(shape.getMessage().contains("[2, 5]"), shape.getMessage());
            float[] x = new float[8];
            x[6] = Float.NaN;
            NonFiniteException nan = assertThrows(NonFiniteException.class, () -> layer.forward(Tensor.of(x, 2, 4), ForwardOptions.inference()));
            assertEquals(6, nan.flatIndex());
        }
    }
}

package io.github.moe4j.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.AuxNormalization;
import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.CapacityBase;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.GateNormalization;
import io.github.moe4j.api.LossWeights;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.PaddingPolicy;
import io.github.moe4j.api.Priority;
import io.github.moe4j.api.RenormTiming;
import io.github.moe4j.api.Rounding;
import io.github.moe4j.api.SecondExpertPolicy;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The CUDA backend's kernels and orchestration on an OpenCL device (PoCL in CI) through the JOCL
 * test runtime, judged against {@code ReferenceLayer} by {@link ForwardAgreement}.
 */
class PoclForwardTest extends PoclBackendTest {

    static Tensor randomInput(int tokens, int d, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        float[] x = new float[tokens * d];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (2 * rnd.nextDouble() - 1);
        }
        return Tensor.of(x, tokens, d);
    }

    static TokenChoiceRouterConfig topK(int k, GateNormalization g, RenormTiming timing) {
        return TokenChoiceRouterConfig.topK(k).withGates(g).withRenormTiming(timing);
    }

    /** One case: a name, a configuration, tokens, options. */
    record Case(String name, MoeConfig config, int tokens, ForwardOptions options) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Arguments> cases() {
        ForwardOptions inference = ForwardOptions.inference();
        Tensor padding = Tensor.of(new float[] {1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1}, 12);
        float[] mask36 = new float[36];
        for (int t = 0; t < 36; t++) {
            mask36[t] = t % 5 == 3 ? 0 : 1;
        }
        return Stream.of(
                new Case("mixtral-like: top-2 renormalised, dropless, SwiGLU, aux TOPK_COUNT + z",
                        MoeConfig.builder().modelDim(24).hiddenDim(40).experts(6).activation(Activation.SWIGLU)
                                .router(TokenChoiceRouterConfig.topK(2)).capacity(Capacity.dropless())
                                .losses(LossWeights.of().aux(0.01, AuxNormalization.TOPK_COUNT).z(0.001)).build(),
                        37, inference),
                new Case("switch-like: top-1 NONE, capacity FLOOR min 2, rank-major, ReLU, jitter, 2 groups",
                        MoeConfig.builder().modelDim(20).hiddenDim(33).experts(4).activation(Activation.RELU)
                                .router(topK(1, GateNormalization.NONE, RenormTiming.BEFORE_CAPACITY).withJitter(0.01,
                                        TokenChoiceRouterConfig.JitterTarget.ROUTER_ONLY))
                                .capacity(Capacity.factor(1.0, CapacityBase.TOKENS, Rounding.FLOOR, 2))
                                .losses(LossWeights.of().aux(0.01, AuxNormalization.TOP1)).build(),
                        32, ForwardOptions.training(7, 3).withGroups(2)),
                new Case("gshard-like: top-2, random second expert, capacity on assignments, exact GELU, jitter to experts",
                        MoeConfig.builder().modelDim(17).hiddenDim(29).experts(5).activation(Activation.GELU)
                                .router(TokenChoiceRouterConfig.topK(2).withSecondExpertPolicy(SecondExpertPolicy.random(0.2))
                                        .withJitter(0.05, TokenChoiceRouterConfig.JitterTarget.ROUTER_AND_EXPERTS))
                                .capacity(Capacity.factor(1.0, CapacityBase.ASSIGNMENTS, Rounding.CEIL, 1))
                                .losses(LossWeights.of().aux(0.01, AuxNormalization.TOP1)).build(),
                        40, ForwardOptions.training(11, 1)),
                new Case("deepspeed-topk-like: top-3 renormalised after capacity, gate-value priority, GEGLU-tanh, biases",
                        MoeConfig.builder().modelDim(19).hiddenDim(23).experts(5).activation(Activation.GEGLU_TANH)
                                .router(topK(3, GateNormalization.RENORMALIZE, RenormTiming.AFTER_CAPACITY))
                                .capacity(Capacity.factor(0.5, CapacityBase.ASSIGNMENTS, Rounding.CEIL, 1))
                                .priority(Priority.GATE_VALUE).routerBias(true).expertBias(true)
                                .losses(LossWeights.of().aux(0.01, AuxNormalization.TOPK_NORMALIZED)).build(),
                        33, inference),
                new Case("st-moe-like: top-2 NONE, batch-prioritised, GEGLU, 3 groups, padding not routed",
                        MoeConfig.builder().modelDim(16).hiddenDim(20).experts(6).activation(Activation.GEGLU)
                                .router(topK(2, GateNormalization.NONE, RenormTiming.BEFORE_CAPACITY))
                                .capacity(Capacity.factor(1.25, CapacityBase.TOKENS, Rounding.ROUND_HALF_EVEN, 2))
                                .priority(Priority.BATCH_PRIORITIZED).padding(PaddingPolicy.NOT_ROUTED)
                                .losses(LossWeights.of().aux(0.01, AuxNormalization.TOPK_COUNT).z(0.001)).build(),
                        36, ForwardOptions.inference().withGroups(3).withPaddingMask(Tensor.of(mask36, 36))),
                new Case("token-major, capacity fixed 2, SiLU, router bias, padding routed",
                        MoeConfig.builder().modelDim(18).hiddenDim(21).experts(3).activation(Activation.SILU)
                                .router(TokenChoiceRouterConfig.topK(2)).capacity(Capacity.fixed(2)).priority(Priority.TOKEN_MAJOR)
                                .routerBias(true).padding(PaddingPolicy.ROUTED).losses(LossWeights.of().aux(0.1).z(0.1)).build(),
                        12, ForwardOptions.inference().withPaddingMask(padding)),
                new Case("k = E = 4, dropless, GELU-tanh: the dense softmax mixture",
                        MoeConfig.builder().modelDim(33).hiddenDim(17).experts(4).activation(Activation.GELU_TANH)
                                .router(topK(4, GateNormalization.NONE, RenormTiming.BEFORE_CAPACITY)).build(),
                        9, inference),
                new Case("one expert, one token",
                        MoeConfig.builder().modelDim(5).hiddenDim(3).experts(1).router(TokenChoiceRouterConfig.topK(1)).build(),
                        1, inference),
                new Case("capacity 0 drops everything",
                        MoeConfig.builder().modelDim(8).hiddenDim(8).experts(4).router(TokenChoiceRouterConfig.topK(2))
                                .capacity(Capacity.fixed(0)).build(),
                        10, inference)
        ).map(Arguments::of);
    }

    /** Noisy top-k cases: learned noise in training (smooth load), no noise, inference, k = E, groups and padding. */
    static Stream<Arguments> noisyCases() {
        float[] mask = new float[24];
        for (int t = 0; t < 24; t++) {
            mask[t] = t % 7 == 2 ? 0 : 1;
        }
        LossWeights noisyLosses = LossWeights.of().importance(0.1).load(0.1).z(0.001);
        return Stream.of(
                new Case("noisy top-2, learned noise, training: smooth load, dropless, ReLU",
                        MoeConfig.builder().modelDim(16).hiddenDim(20).experts(6).activation(Activation.RELU)
                                .router(io.github.moe4j.api.NoisyTopKRouterConfig.of(2)).capacity(Capacity.dropless())
                                .losses(noisyLosses).build(),
                        30, ForwardOptions.training(5, 2)),
                new Case("noisy top-1, learned noise, training, capacity 1.0, 2 groups, padding not routed",
                        MoeConfig.builder().modelDim(12).hiddenDim(14).experts(4).activation(Activation.GELU)
                                .router(io.github.moe4j.api.NoisyTopKRouterConfig.of(1)).capacity(Capacity.factor(1.0))
                                .padding(PaddingPolicy.NOT_ROUTED).losses(noisyLosses).build(),
                        24, ForwardOptions.training(9, 1).withGroups(2).withPaddingMask(Tensor.of(mask, 24))),
                new Case("noisy top-2, no noise (count load), SwiGLU, inference",
                        MoeConfig.builder().modelDim(10).hiddenDim(12).experts(5).activation(Activation.SWIGLU)
                                .router(new io.github.moe4j.api.NoisyTopKRouterConfig(2, io.github.moe4j.api.NoisyTopKRouterConfig.Noise.NONE,
                                        io.github.moe4j.api.NoisyTopKRouterConfig.DEFAULT_NOISE_EPSILON))
                                .losses(noisyLosses).build(),
                        18, inferenceOptions()),
                new Case("noisy top-3 of 3 (k = E), learned noise, training: count load",
                        MoeConfig.builder().modelDim(9).hiddenDim(8).experts(3).router(io.github.moe4j.api.NoisyTopKRouterConfig.of(3))
                                .losses(noisyLosses).build(),
                        11, ForwardOptions.training(3, 4))
        ).map(Arguments::of);
    }

    /** Expert-choice cases: capacity factors, groups with padding not routed, biases, the z-loss. */
    static Stream<Arguments> expertChoiceCases() {
        float[] mask = new float[20];
        for (int t = 0; t < 20; t++) {
            mask[t] = t % 6 == 1 ? 0 : 1;
        }
        return Stream.of(
                new Case("expert choice, capacity factor 1.0, SwiGLU, z-loss",
                        io.github.moe4j.api.Presets.expertChoice(1.0).modelDim(16).hiddenDim(20).experts(4).activation(Activation.SWIGLU)
                                .losses(LossWeights.of().z(0.01)).build(),
                        24, inference()),
                new Case("expert choice, capacity factor 2.0, GELU, 2 groups, padding not routed, biases",
                        io.github.moe4j.api.Presets.expertChoice(2.0).modelDim(12).hiddenDim(10).experts(5).activation(Activation.GELU)
                                .padding(PaddingPolicy.NOT_ROUTED).routerBias(true).expertBias(true).losses(LossWeights.of().z(0.1)).build(),
                        20, ForwardOptions.inference().withGroups(2).withPaddingMask(Tensor.of(mask, 20))),
                new Case("expert choice, fixed capacity 3, ReLU, 3 experts",
                        io.github.moe4j.api.Presets.expertChoice(1.0).modelDim(9).hiddenDim(7).experts(3).capacity(Capacity.fixed(3))
                                .build(),
                        11, ForwardOptions.training(4, 2))
        ).map(Arguments::of);
    }

    private static ForwardOptions inference() {
        return ForwardOptions.inference();
    }

    /** Each expert-choice case agrees with the reference: selection up to near-ties, values within the derived bound. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("expertChoiceCases")
    void expertChoiceForwardMatchesReference(Case c) {
        forwardMatchesReference(c);
    }

    private static ForwardOptions inferenceOptions() {
        return ForwardOptions.inference();
    }

    /** Each noisy top-k case agrees with the reference, losses included. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("noisyCases")
    void noisyForwardMatchesReference(Case c) {
        forwardMatchesReference(c);
    }

    /** Each case agrees with the reference: routing up to near-ties, values within the derived float32 bound. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void forwardMatchesReference(Case c) {
        MoeWeights w = MoeWeights.random(c.config(), 1000 + c.tokens());
        try (MoeLayer layer = backend.createLayer(c.config(), w)) {
            ForwardAgreement.Report report = ForwardAgreement.check(layer, w, randomInput(c.tokens(), c.config().modelDim(), c.tokens()),
                    c.options());
            System.out.println("[PoCL] " + c.name() + ": " + report);
            assertTrue(report.worstOutputRatio() <= 1);
        }
        assertEquals(0, backend.pool().inUse(), "scratch buffers still borrowed after forward");
    }

    /** Exactly tied logits (duplicated router columns) go to the lower expert index, as the reference's rule says. */
    @Test
    void exactTiesGoToTheLowerExpertIndex() {
        MoeConfig config = MoeConfig.builder().modelDim(12).hiddenDim(7).experts(5).router(TokenChoiceRouterConfig.topK(2)).build();
        MoeWeights w = MoeWeights.random(config, 5);
        float[] router = w.router().toArray();
        for (int j = 0; j < 12; j++) {
            router[j * 5 + 3] = router[j * 5 + 1];   // expert 3 ties expert 1 on every token
            router[j * 5 + 4] = router[j * 5 + 1];   // and so does expert 4
        }
        MoeWeights tied = new MoeWeights(Tensor.of(router, 12, 5), null, null, w.wIn(), null, w.wOut(), null, null);
        Tensor x = randomInput(20, 12, 99);
        try (MoeLayer layer = backend.createLayer(config, tied); MoeForward f = layer.forward(x, ForwardOptions.inference())) {
            int[] sel = f.routing().experts2d();
            int[] want = new io.github.moe4j.reference.ReferenceLayer(config, tied).forward(x.toDoubleArray(), 20, ForwardOptions.inference())
                    .plan().selected();
            assertArrayEquals(want, sel, "selection with exact ties");
            boolean sawTie = false;
            for (int t = 0; t < 20; t++) {
                assertTrue(sel[t * 2] != 3 && sel[t * 2] != 4, "token " + t + " ranks a tied higher index first");
                sawTie |= sel[t * 2] == 1 || sel[t * 2 + 1] == 1;
            }
            assertTrue(sawTie, "the test never exercised a tie");
            ForwardAgreement.check(layer, tied, x, ForwardOptions.inference());
        }
    }

    /** An empty batch gives an empty output, an empty routing and zero losses, and launches nothing. */
    @Test
    void emptyBatch() {
        MoeConfig config = MoeConfig.builder().modelDim(4).hiddenDim(4).experts(2).router(TokenChoiceRouterConfig.topK(1)).build();
        try (MoeLayer layer = backend.createLayer(config, MoeWeights.random(config, 1));
             MoeForward f = layer.forward(Tensor.zeros(0, 4), ForwardOptions.inference())) {
            assertArrayEquals(new int[] {0, 4}, f.output().shape());
            assertEquals(0, f.routing().tokens());
            assertEquals(0.0, f.losses().total());
        }
    }

    /** The same input twice gives bit-identical outputs, routing and losses (no atomics in any result). */
    @Test
    void sameInputTwiceIsBitIdentical() {
        MoeConfig config = MoeConfig.builder().modelDim(16).hiddenDim(24).experts(4).activation(Activation.SWIGLU)
                .router(TokenChoiceRouterConfig.topK(2)).capacity(Capacity.factor(1.0)).losses(LossWeights.of().aux(0.01).z(0.01)).build();
        Tensor x = randomInput(25, 16, 3);
        try (MoeLayer layer = backend.createLayer(config, MoeWeights.random(config, 2));
             MoeForward a = layer.forward(x, ForwardOptions.inference());
             MoeForward b = layer.forward(x, ForwardOptions.inference())) {
            assertEquals(a.output(), b.output());
            assertEquals(a.routing(), b.routing());
            assertEquals(a.losses(), b.losses());
        }
    }
}

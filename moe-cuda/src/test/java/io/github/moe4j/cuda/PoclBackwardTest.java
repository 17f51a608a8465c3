package io.github.moe4j.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.Freeze;
import io.github.moe4j.api.LossWeights;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeGradients;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.NonFiniteException;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.util.EnumSet;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The CUDA backend's backward pass on an OpenCL device (PoCL in CI) through the JOCL test runtime,
 * judged against {@code ReferenceLayer#backward} by {@link BackwardAgreement}: the same nine
 * configurations as the forward test, freezing, determinism, misuse, and proof that the check
 * fails a backward that is slightly wrong.
 */
class PoclBackwardTest extends PoclBackendTest {

    static java.util.stream.Stream<org.junit.jupiter.params.provider.Arguments> cases() {
        return PoclForwardTest.cases();
    }

    /** Every gradient of each configuration agrees with the reference within the derived float32 bound. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void backwardMatchesReference(PoclForwardTest.Case c) {
        MoeWeights w = MoeWeights.random(c.config(), 1000 + c.tokens());
        Tensor x = PoclForwardTest.randomInput(c.tokens(), c.config().modelDim(), c.tokens());
        Tensor dY = PoclForwardTest.randomInput(c.tokens(), c.config().modelDim(), 77 + c.tokens());
        try (MoeLayer layer = backend.createLayer(c.config(), w)) {
            BackwardAgreement.Report report = BackwardAgreement.check(layer, w, x, c.options(), dY, Set.of());
            System.out.println("[PoCL backward] " + c.name() + ": " + report);
            assertTrue(report.worstRatio() <= 1);
        }
        assertEquals(0, backend.pool().inUse(), "scratch buffers still borrowed after backward");
    }

    /**
     * The losses' gradients alone (dY = 0, loss coefficients raised to 1 so they dominate), where the
     * bound has no slack from the expert path: the aux and z gradients through the softmax, per group
     * and with padding, each within its bound.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void lossOnlyBackwardMatchesReference(PoclForwardTest.Case c) {
        MoeConfig config = c.config().toBuilder().losses(LossWeights.of().aux(1.0, c.config().losses().auxNormalization()).z(1.0)).build();
        MoeWeights w = MoeWeights.random(config, 2000 + c.tokens());
        Tensor x = PoclForwardTest.randomInput(c.tokens(), config.modelDim(), c.tokens() + 5);
        try (MoeLayer layer = backend.createLayer(config, w)) {
            BackwardAgreement.Report report = BackwardAgreement.check(layer, w, x, c.options(), Tensor.zeros(c.tokens(), config.modelDim()),
                    Set.of());
            System.out.println("[PoCL loss-only backward] " + c.name() + ": " + report);
            assertTrue(report.worstRatio() <= 1);
        }
    }

    static java.util.stream.Stream<org.junit.jupiter.params.provider.Arguments> noisyCases() {
        return PoclForwardTest.noisyCases();
    }

    static java.util.stream.Stream<org.junit.jupiter.params.provider.Arguments> expertChoiceCases() {
        return PoclForwardTest.expertChoiceCases();
    }

    /** Noisy top-k: every gradient, W_noise's included, agrees with the reference within the derived bound. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("noisyCases")
    void noisyBackwardMatchesReference(PoclForwardTest.Case c) {
        backwardMatchesReference(c);
    }

    /**
     * Noisy top-k's losses alone (dY = 0; importance, load and z coefficients 1): the gradients through
     * importance, the smooth load's thresholds and σ, each within its bound.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("noisyCases")
    void noisyLossOnlyBackwardMatchesReference(PoclForwardTest.Case c) {
        MoeConfig config = c.config().toBuilder().losses(LossWeights.of().importance(1.0).load(1.0).z(1.0)).build();
        MoeWeights w = MoeWeights.random(config, 3000 + c.tokens());
        Tensor x = PoclForwardTest.randomInput(c.tokens(), config.modelDim(), c.tokens() + 6);
        try (MoeLayer layer = backend.createLayer(config, w)) {
            BackwardAgreement.Report report = BackwardAgreement.check(layer, w, x, c.options(), Tensor.zeros(c.tokens(), config.modelDim()),
                    Set.of());
            System.out.println("[PoCL noisy loss-only backward] " + c.name() + ": " + report);
            assertTrue(report.worstRatio() <= 1);
        }
    }

    /** Expert choice: every gradient agrees with the reference within the derived bound. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("expertChoiceCases")
    void expertChoiceBackwardMatchesReference(PoclForwardTest.Case c) {
        backwardMatchesReference(c);
    }

    private static final MoeConfig NOISY = MoeConfig.builder().modelDim(10).hiddenDim(8).experts(5)
            .router(io.github.moe4j.api.NoisyTopKRouterConfig.of(2)).losses(LossWeights.of().importance(1.0).load(1.0)).build();

    /**
     * The noisy loss path has teeth: a load coefficient off by 1 % fails the loss-only comparison (which
     * W_noise's gradient, reached only through σ, carries), and so does an importance coefficient off by 1 %.
     */
    @Test
    void agreementCheckFailsAnAlmostRightNoisyLossGradient() {
        MoeWeights w = MoeWeights.random(NOISY, 41);
        Tensor x = PoclForwardTest.randomInput(20, 10, 42);
        Tensor zero = Tensor.zeros(20, 10);
        ForwardOptions training = ForwardOptions.training(43, 1);
        try (MoeLayer layer = backend.createLayer(NOISY, w)) {
            BackwardAgreement.check(layer, NOISY, w, x, training, zero, zero, Set.of());
            for (MoeConfig oracle : java.util.List.of(NOISY.toBuilder().losses(LossWeights.of().importance(1.0).load(1.01)).build(),
                    NOISY.toBuilder().losses(LossWeights.of().importance(1.01).load(1.0)).build())) {
                AssertionError e = assertThrows(AssertionError.class,
                        () -> BackwardAgreement.check(layer, oracle, w, x, training, zero, zero, Set.of()));
                assertTrue(e.getMessage().contains("|err|"), e.getMessage());
            }
        }
    }

    /** Noisy top-k with learned noise: W_noise gets a gradient, null when the router is frozen, zeros in inference. */
    @Test
    void noiseRouterGradientFollowsFreezingAndMode() {
        MoeWeights w = MoeWeights.random(NOISY, 51);
        Tensor x = PoclForwardTest.randomInput(12, 10, 52);
        Tensor dY = PoclForwardTest.randomInput(12, 10, 53);
        try (MoeLayer layer = backend.createLayer(NOISY, w)) {
            try (MoeForward f = layer.forward(x, ForwardOptions.training(54, 1))) {
                MoeGradients g = layer.backward(f, dY, Set.of());
                assertNotNull(g.noiseRouter());
                assertTrue(g.noiseRouter().toDoubleArray().length == 50
                        && java.util.Arrays.stream(g.noiseRouter().toDoubleArray()).anyMatch(v -> v != 0),
                        "training with learned noise gave W_noise no gradient");
                assertNull(layer.backward(f, dY, Set.of(Freeze.ROUTER)).noiseRouter());
            }
            try (MoeForward f = layer.forward(x, ForwardOptions.inference())) {
                assertEquals(Tensor.zeros(10, 5), layer.backward(f, dY, Set.of()).noiseRouter());
            }
        }
    }

    /** The loss path has teeth: an aux-loss coefficient off by 1 % fails the loss-only comparison. */
    @Test
    void agreementCheckFailsAnAlmostRightLossGradient() {
        MoeConfig device = BIASED.toBuilder().losses(LossWeights.of().aux(1.0).z(1.0)).build();
        MoeConfig oracle = BIASED.toBuilder().losses(LossWeights.of().aux(1.01).z(1.0)).build();
        MoeWeights w = MoeWeights.random(device, 21);
        Tensor x = PoclForwardTest.randomInput(16, 12, 22);
        Tensor zero = Tensor.zeros(16, 12);
        try (MoeLayer layer = backend.createLayer(device, w)) {
            BackwardAgreement.check(layer, device, w, x, ForwardOptions.inference(), zero, zero, Set.of());
            AssertionError e = assertThrows(AssertionError.class,
                    () -> BackwardAgreement.check(layer, oracle, w, x, ForwardOptions.inference(), zero, zero, Set.of()));
            assertTrue(e.getMessage().contains("|err|"), e.getMessage());
        }
    }

    private static final MoeConfig BIASED = MoeConfig.builder().modelDim(12).hiddenDim(10).experts(4).activation(Activation.SWIGLU)
            .router(TokenChoiceRouterConfig.topK(2)).capacity(Capacity.factor(1.0)).routerBias(true).expertBias(true)
            .losses(LossWeights.of().aux(0.01).z(0.001)).build();

    /** Freezing a group nulls exactly its components and leaves the others, and the input's gradient, as the reference's. */
    @Test
    void freezingNullsItsGroupAndKeepsTheRest() {
        MoeWeights w = MoeWeights.random(BIASED, 31);
        Tensor x = PoclForwardTest.randomInput(14, 12, 32);
        Tensor dY = PoclForwardTest.randomInput(14, 12, 33);
        try (MoeLayer layer = backend.createLayer(BIASED, w)) {
            for (Set<Freeze> frozen : java.util.List.of(Set.of(Freeze.ROUTER), Set.of(Freeze.EXPERTS), EnumSet.allOf(Freeze.class))) {
                BackwardAgreement.check(layer, w, x, ForwardOptions.inference(), dY, frozen);
                try (MoeForward f = layer.forward(x, ForwardOptions.inference())) {
                    MoeGradients g = layer.backward(f, dY, frozen);
                    assertNotNull(g.input());
                    assertEquals(frozen.contains(Freeze.ROUTER), g.router() == null, frozen + ": router");
                    assertEquals(frozen.contains(Freeze.ROUTER), g.routerBias() == null, frozen + ": routerBias");
                    assertEquals(frozen.contains(Freeze.EXPERTS), g.wIn() == null, frozen + ": wIn");
                    assertEquals(frozen.contains(Freeze.EXPERTS), g.wGate() == null, frozen + ": wGate");
                    assertEquals(frozen.contains(Freeze.EXPERTS), g.wOut() == null, frozen + ": wOut");
                    assertEquals(frozen.contains(Freeze.EXPERTS), g.bIn() == null, frozen + ": bIn");
                    assertEquals(frozen.contains(Freeze.EXPERTS), g.bOut() == null, frozen + ": bOut");
                    assertNull(g.noiseRouter());
                }
            }
        }
    }

    /** Freezing skips the device work of the frozen group: fewer launches. */
    @Test
    void freezingSkipsWork() {
        FaultyRuntime rt = new FaultyRuntime(OpenClRuntime.open());
        CudaBackend b = new CudaBackend(rt);
        MoeWeights w = MoeWeights.random(BIASED, 3);
        Tensor x = PoclForwardTest.randomInput(10, 12, 4);
        try (MoeLayer layer = b.createLayer(BIASED, w); MoeForward f = layer.forward(x, ForwardOptions.inference())) {
            int[] launches = new int[3];
            int i = 0;
            for (Set<Freeze> frozen : java.util.List.of(Set.<Freeze>of(), Set.of(Freeze.ROUTER), Set.of(Freeze.EXPERTS))) {
                rt.failLaunch(0);
                layer.backward(f, x, frozen);
                launches[i++] = rt.launches();
            }
            assertTrue(launches[1] < launches[0], "freezing the router did not save launches: " + java.util.Arrays.toString(launches));
            assertTrue(launches[2] < launches[0], "freezing the experts did not save launches: " + java.util.Arrays.toString(launches));
        } finally {
            b.close();
        }
        assertEquals(0, rt.liveAllocations());
    }

    /** The same backward twice gives bit-identical gradients (no atomics). */
    @Test
    void sameBackwardTwiceIsBitIdentical() {
        MoeWeights w = MoeWeights.random(BIASED, 5);
        Tensor x = PoclForwardTest.randomInput(17, 12, 6);
        Tensor dY = PoclForwardTest.randomInput(17, 12, 7);
        try (MoeLayer layer = backend.createLayer(BIASED, w); MoeForward f = layer.forward(x, ForwardOptions.inference())) {
            BackwardAgreement.assertSame(layer.backward(f, dY, Set.of()), layer.backward(f, dY, Set.of()));
        }
    }

    /**
     * The comparison has teeth: a backward fed dY off by one part in a thousand (every expert weight
     * gradient then off by 0.1 %) fails {@link BackwardAgreement}.
     */
    @Test
    void agreementCheckFailsAnAlmostRightBackward() {
        MoeWeights w = MoeWeights.random(BIASED, 8);
        Tensor x = PoclForwardTest.randomInput(12, 12, 9);
        float[] dy = PoclForwardTest.randomInput(12, 12, 10).toArray();
        float[] skewed = dy.clone();
        for (int i = 0; i < skewed.length; i++) {
            skewed[i] *= 1.001f;
        }
        try (MoeLayer layer = backend.createLayer(BIASED, w)) {
            AssertionError e = assertThrows(AssertionError.class, () -> BackwardAgreement.check(layer, w, x, ForwardOptions.inference(),
                    Tensor.of(dy, 12, 12), Tensor.of(skewed, 12, 12), Set.of()));
            assertTrue(e.getMessage().contains("|err|"), e.getMessage());
        }
    }

    /** Misuse: a foreign or closed forward, a wrong shape, a non-finite dY; an empty batch gives empty and zero gradients. */
    @Test
    void misuseAndEmptyBatch() {
        MoeWeights w = MoeWeights.random(BIASED, 11);
        Tensor x = PoclForwardTest.randomInput(6, 12, 12);
        try (MoeLayer layer = backend.createLayer(BIASED, w); MoeLayer other = backend.createLayer(BIASED, w)) {
            MoeForward f = layer.forward(x, ForwardOptions.inference());
            IllegalArgumentException foreign = assertThrows(IllegalArgumentException.class, () -> other.backward(f, x, Set.of()));
            assertTrue(foreign.getMessage().contains("another cuda layer"), foreign.getMessage());
            assertThrows(IllegalArgumentException.class, () -> layer.backward(f, Tensor.zeros(5, 12), Set.of()));
            float[] bad = new float[72];
            bad[7] = Float.NaN;
            assertThrows(NonFiniteException.class, () -> layer.backward(f, Tensor.of(bad, 6, 12), Set.of()));
            f.close();
            assertThrows(IllegalStateException.class, () -> layer.backward(f, x, Set.of()));
            try (MoeForward empty = layer.forward(Tensor.zeros(0, 12), ForwardOptions.inference())) {
                MoeGradients g = layer.backward(empty, Tensor.zeros(0, 12), Set.of());
                assertEquals(0, g.input().size());
                assertEquals(Tensor.zeros(12, 4), g.router());
                assertEquals(Tensor.zeros(4, 12, 10), g.wGate());
            }
        }
        assertEquals(0, backend.pool().inUse());
    }
}

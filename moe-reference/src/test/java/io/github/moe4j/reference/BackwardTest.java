package io.github.moe4j.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.AuxNormalization;
import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.Freeze;
import io.github.moe4j.api.GateNormalization;
import io.github.moe4j.api.LossWeights;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeGradients;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.NonFiniteException;
import io.github.moe4j.api.Presets;
import io.github.moe4j.api.RenormTiming;
import io.github.moe4j.api.RouterNoise;
import io.github.moe4j.api.SecondExpertPolicy;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.util.EnumSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The reference backward on hand-made cases: drops, its API and its errors. */
class BackwardTest {
    private static final Set<Freeze> NONE = EnumSet.noneOf(Freeze.class);

    private static double[] wave(int n, double a, double b) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = Math.sin(a * i + b);
        }
        return v;
    }

    /** A two-expert layer whose router bias sends every token to expert 0 (d = 2, h = 3). */
    private static ReferenceLayer biasedLayer(MoeConfig config, double[] bias) {
        int d = config.modelDim();
        int h = config.hiddenDim();
        int e = config.experts();
        return new ReferenceLayer(config, new ReferenceWeights(d, h, e, wave(d * e, 0.7, 0.1), bias, null,
                wave(e * d * h, 1.3, 0.2), null, wave(e * h * d, 0.9, 0.4), null, null));
    }

    /**
     * Capacity 1 with every token choosing expert 0: only token 0 is kept, so expert 0's gradients
     * are exactly those of token 0 alone, expert 1 gets exactly zero, and the dropped tokens' input
     * gradient is exactly zero (their gate is the constant 0 and α = β = 0).
     */
    @Test
    void droppedAssignmentsGiveTheirExpertNothing() {
        MoeConfig config = MoeConfig.builder().modelDim(2).hiddenDim(3).experts(2).activation(Activation.GELU)
                .router(TokenChoiceRouterConfig.topK(1).withGates(GateNormalization.NONE)).capacity(Capacity.fixed(1))
                .routerBias(true).build();
        ReferenceLayer layer = biasedLayer(config, new double[] {5, -5});
        double[] x = wave(4 * 2, 0.5, 0.3);
        double[] dY = wave(4 * 2, 0.8, 1.1);
        ReferenceForward f = layer.forward(x, 4, ForwardOptions.inference());
        assertArrayEquals(new int[] {4, 0}, f.plan().load());
        assertArrayEquals(new int[] {1, 0}, f.plan().kept());
        ReferenceGradients all = layer.backward(f, dY, NONE);

        ReferenceForward alone = layer.forward(java.util.Arrays.copyOf(x, 2), 1, ForwardOptions.inference());
        ReferenceGradients one = layer.backward(alone, java.util.Arrays.copyOf(dY, 2), NONE);
        assertArrayEquals(one.wIn(), all.wIn());
        assertArrayEquals(one.wOut(), all.wOut());
        for (int i = 2; i < 8; i++) {
            assertEquals(0.0, all.input()[i], "dropped token " + i / 2 + " feature " + i % 2);
        }
        int h = config.hiddenDim();
        for (int i = 2 * h; i < 2 * 2 * h; i++) {
            assertEquals(0.0, all.wIn()[i], "expert 1 wIn");
            assertEquals(0.0, all.wOut()[i], "expert 1 wOut");
        }
    }

    /**
     * GShard's random policy with θ = 1, second gates near 0.02 and supplied uniforms of at least
     * 0.3 drops every second choice: expert 1, chosen only second and never kept, gets exactly zero
     * gradient.
     */
    @Test
    void expertWhoseAssignmentsWereAllDroppedByThePolicyGetsNothing() {
        MoeConfig config = MoeConfig.builder().modelDim(2).hiddenDim(3).experts(3).activation(Activation.SILU)
                .router(TokenChoiceRouterConfig.topK(2).withSecondExpertPolicy(SecondExpertPolicy.random(1)))
                .routerBias(true).losses(LossWeights.of().aux(0.1).z(0.01)).build();
        ReferenceLayer layer = biasedLayer(config, new double[] {4, 0, -10});
        double[] x = wave(4 * 2, 0.5, 0.3);
        RouterNoise uniforms = new RouterNoise(null, null, Tensor.of(new float[] {0.3f, 0.5f, 0.7f, 0.9f}, 4));
        ReferenceForward f = layer.forward(x, 4, ForwardOptions.training(7, 0).withNoise(uniforms));
        assertEquals(4, f.plan().load()[1], "expert 1 is every token's second choice");
        assertEquals(0, f.plan().kept()[1], "and the policy dropped them all");
        ReferenceGradients g = layer.backward(f, wave(8, 0.8, 1.1), NONE);
        int dh = 2 * 3;
        for (int i = 0; i < dh; i++) {
            assertEquals(0.0, g.wIn()[dh + i], "expert 1 wIn");
            assertEquals(0.0, g.wOut()[dh + i], "expert 1 wOut");
            assertTrue(g.wIn()[i] != 0, "expert 0 wIn is trained");
        }
    }

    /**
     * SPEC §12's "k = E gives zero aux gradient" holds for TOPK_NORMALIZED and TOPK_COUNT (f is
     * constant, see {@code GradientFactProperties}) but not for TOP1, whose f counts first choices.
     */
    @Test
    void topOneAuxGradientIsNotZeroAtKEqualsE() {
        MoeConfig config = MoeConfig.builder().modelDim(2).hiddenDim(3).experts(2)
                .router(TokenChoiceRouterConfig.topK(2)).losses(LossWeights.of().aux(1, AuxNormalization.TOP1)).build();
        ReferenceLayer layer = biasedLayer(config, null);
        ReferenceForward f = layer.forward(wave(8, 0.5, 0.3), 4, ForwardOptions.inference());
        double max = 0;
        for (double v : layer.logitGradient(f, LossTerm.AUX)) {
            max = Math.max(max, Math.abs(v));
        }
        assertTrue(max > 1e-3, "TOP1 aux gradient at k = E: max |dL/dz| = " + max);
    }

    @Test
    void backwardOfAnotherLayersForwardIsRejected() {
        MoeConfig config = Presets.mixtral().modelDim(4).hiddenDim(4).experts(3).build();
        ReferenceLayer a = new ReferenceLayer(config, MoeWeights.random(config, 1));
        ReferenceLayer b = new ReferenceLayer(config, MoeWeights.random(config, 1));
        MoeForward f = a.forward(Tensor.zeros(2, 4), ForwardOptions.inference());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> b.backward(f, Tensor.zeros(2, 4), NONE));
        assertEquals("forward was not returned by this layer's forward (it came from another ReferenceLayer). "
                + "Hint: pass backward the MoeForward that this layer's forward returned", e.getMessage());
    }

    @Test
    void wrongOutputGradientShapeIsNamed() {
        MoeConfig config = Presets.mixtral().modelDim(4).hiddenDim(4).experts(3).build();
        ReferenceLayer layer = new ReferenceLayer(config, MoeWeights.random(config, 1));
        MoeForward f = layer.forward(Tensor.zeros(2, 4), ForwardOptions.inference());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> layer.backward(f, Tensor.zeros(3, 4), NONE));
        assertEquals("dOutput has shape [3, 4] but [tokens, modelDim] = [2, 4] was expected", e.getMessage());
        IllegalArgumentException d = assertThrows(IllegalArgumentException.class,
                () -> layer.backward((ReferenceForward) f, new double[7], NONE));
        assertEquals("dY has 7 values but [tokens, modelDim] = [2, 4] needs 8", d.getMessage());
        IllegalArgumentException g = assertThrows(IllegalArgumentException.class,
                () -> layer.backwardFromGates((ReferenceForward) f, new double[3], NONE));
        assertEquals("dGate has 3 values but [tokens, choices] = [2, 2] needs 4", g.getMessage());
    }

    @Test
    void nonFiniteOutputGradientIsReported() {
        MoeConfig config = Presets.mixtral().modelDim(4).hiddenDim(4).experts(3).build();
        ReferenceLayer layer = new ReferenceLayer(config, MoeWeights.random(config, 1));
        MoeForward f = layer.forward(Tensor.zeros(2, 4), ForwardOptions.inference());
        float[] dY = new float[8];
        dY[5] = Float.NaN;
        NonFiniteException e = assertThrows(NonFiniteException.class, () -> layer.backward(f, Tensor.of(dY, 2, 4), NONE));
        assertTrue(e.getMessage().startsWith("dOutput has a non-finite value NaN at [1, 1]"), e.getMessage());
    }

    /** The float32 API rounds the double gradients once, keeps their shapes, and leaves absent or frozen parts null. */
    @Test
    void apiGradientsAreTheDoubleGradientsRoundedOnce() {
        MoeConfig config = Presets.stMoe().modelDim(4).hiddenDim(6).experts(3).expertBias(true).build();
        ReferenceLayer layer = new ReferenceLayer(config, MoeWeights.random(config, 5));
        Tensor x = Tensor.ofDoubles(wave(5 * 4, 0.37, 0.2), 5, 4);
        Tensor dY = Tensor.ofDoubles(wave(5 * 4, 0.91, 0.5), 5, 4);
        MoeForward f = layer.forward(x, ForwardOptions.training(3, 1));
        MoeGradients g = layer.backward(f, dY, EnumSet.of(Freeze.ROUTER));
        ReferenceGradients exact = layer.backward((ReferenceForward) f, dY.toDoubleArray(), EnumSet.of(Freeze.ROUTER));
        assertEquals(Tensor.ofDoubles(exact.input(), 5, 4), g.input());
        assertEquals(Tensor.ofDoubles(exact.wGate(), 3, 4, 6), g.wGate());
        assertEquals(Tensor.ofDoubles(exact.wOut(), 3, 6, 4), g.wOut());
        assertEquals(Tensor.ofDoubles(exact.bIn(), 3, 6), g.bIn());
        assertNull(g.router());
        assertNull(g.routerBias(), "no router bias in this configuration");
        assertNull(g.noiseRouter());
        assertNotNull(g.bOut());
    }

    @Test
    void emptyBatchHasEmptyGradients() {
        MoeConfig config = Presets.switchTop1().modelDim(4).hiddenDim(4).experts(3).build();
        ReferenceLayer layer = new ReferenceLayer(config, MoeWeights.random(config, 1));
        MoeForward f = layer.forward(Tensor.zeros(0, 4), ForwardOptions.training(1, 1));
        MoeGradients g = layer.backward(f, Tensor.zeros(0, 4), NONE);
        assertArrayEquals(new int[] {0, 4}, g.input().shape());
        assertEquals(Tensor.zeros(4, 3), g.router());
    }

    /** backwardFromGates with dG = ∂(Σ dY ⊙ y)/∂g reproduces the router half of backward(dY). */
    @Test
    void backwardFromGatesIsTheRouterHalfOfBackward() {
        MoeConfig config = MoeConfig.builder().modelDim(3).hiddenDim(4).experts(4).activation(Activation.SWIGLU)
                .router(TokenChoiceRouterConfig.topK(2).withRenormTiming(RenormTiming.AFTER_CAPACITY)).capacity(Capacity.fixed(2))
                .losses(LossWeights.of().aux(0.3).z(0.2)).routerBias(true).build();
        ReferenceLayer layer = new ReferenceLayer(config, MoeWeights.random(config, 11));
        int tokens = 6;
        double[] x = wave(tokens * 3, 0.77, 0.1);
        double[] dY = wave(tokens * 3, 0.43, 0.9);
        ReferenceForward f = layer.forward(x, tokens, ForwardOptions.inference());
        double[] dGate = new double[tokens * 2];
        for (int t = 0; t < tokens; t++) {
            for (int j = 0; j < 2; j++) {
                int row = f.dispatch().rowOf()[t * 2 + j];
                if (row >= 0) {
                    double[] out = f.experts().activations()[f.plan().selected()[t * 2 + j]][row].output();
                    for (int c = 0; c < 3; c++) {
                        dGate[t * 2 + j] += dY[t * 3 + c] * out[c];
                    }
                }
            }
        }
        ReferenceGradients full = layer.backward(f, dY, NONE);
        ReferenceGradients router = layer.backwardFromGates(f, dGate, NONE);
        assertArrayEquals(full.router(), router.router(), 1e-15);
        assertArrayEquals(full.routerBias(), router.routerBias(), 1e-15);
        assertNull(router.wIn());
        assertEquals(0, router.work().expertWeightMultiplyAdds());
    }

    /** The loss terms' gradients, unweighted, add up with the configuration's coefficients to backward's router gradient at dY = 0. */
    @Test
    void lossGradientsAreUnweightedTermsOfTheTotal() {
        MoeConfig config = Presets.shazeerNoisyTopK(2).modelDim(3).hiddenDim(4).experts(4)
                .losses(LossWeights.of().z(0.3).importance(0.7).load(1.3)).build();
        ReferenceLayer layer = new ReferenceLayer(config, MoeWeights.random(config, 2));
        ReferenceForward f = layer.forward(wave(5 * 3, 0.61, 0.2), 5, ForwardOptions.training(9, 4));
        ReferenceGradients total = layer.backward(f, new double[5 * 3], NONE);
        ReferenceGradients z = layer.lossGradients(f, LossTerm.Z, NONE);
        ReferenceGradients imp = layer.lossGradients(f, LossTerm.IMPORTANCE, NONE);
        ReferenceGradients load = layer.lossGradients(f, LossTerm.LOAD, NONE);
        ReferenceGradients aux = layer.lossGradients(f, LossTerm.AUX, NONE);
        for (int i = 0; i < total.noiseRouter().length; i++) {
            assertEquals(total.router()[i], 0.3 * z.router()[i] + 0.7 * imp.router()[i] + 1.3 * load.router()[i], 1e-14);
            assertEquals(total.noiseRouter()[i], 0.7 * imp.noiseRouter()[i] + 1.3 * load.noiseRouter()[i], 1e-14);
            assertEquals(0.0, z.noiseRouter()[i], "the z-loss is on the clean logits");
            assertEquals(0.0, aux.router()[i], "no aux loss for noisy top-k");
        }
        assertTrue(load.noiseRouter()[0] != 0, "the smooth load trains the noise weight");
    }
}

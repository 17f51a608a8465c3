package io.github.moe4j.reference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.AuxNormalization;
import io.github.moe4j.api.Freeze;
import io.github.moe4j.api.GateNormalization;
import io.github.moe4j.api.LossWeights;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.Priority;
import io.github.moe4j.api.RenormTiming;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.util.EnumSet;
import java.util.Set;
import net.jqwik.api.Assume;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;

/**
 * Gradient facts that hold exactly or in closed form (SPEC §5, §10, §12), over random small layers:
 * the aux and z-loss gradients with respect to the logits, which logits the gates send gradient
 * to, and the special cases k = 1 and k = E.
 */
class GradientFactProperties {
    private static final Set<Freeze> NONE = EnumSet.noneOf(Freeze.class);

    /**
     * Agreement demanded between two analytic forms of the same gradient: the closed forms are
     * O(E) ≤ 4 in size and both sides take a handful of roundings, so 1e-13 is about 100 ulps.
     */
    private static final double CLOSED_FORM = 1e-13;

    /**
     * SPEC §5: \( \partial L_{aux} / \partial z_{t,j} = (E/T_g)\, p_{t,j} (f_j - \sum_i f_i p_{t,i}) / G \) for the
     * real tokens of each group (T_g of them), 0 for padding, f from the selection of the configured
     * convention, for every token-choice router, capacity and priority.
     */
    @Property(tries = 300)
    void auxLogitGradientIsTheClosedForm(@ForAll BackwardCase.CapacityKind capacity, @ForAll Priority priority, @ForAll long seed) {
        BackwardCase c = BackwardCase.random(BackwardCase.RouterKind.TOKEN_CHOICE, capacity, priority, Activation.RELU, seed);
        ReferenceLayer layer = c.layer();
        ReferenceForward f = layer.forward(c.x(), c.tokens(), c.options());
        double[] got = layer.logitGradient(f, LossTerm.AUX);

        int e = c.config().experts();
        int groups = c.options().groups();
        int groupSize = c.tokens() / groups;
        double[] want = new double[c.tokens() * e];
        for (int g = 0; g < groups; g++) {
            int[] real = realTokens(f, g, groupSize);
            double[] fraction = LoadBalancingLoss.dispatchFraction(f.plan().selected(), c.config().topK(), e, real,
                    c.config().losses().auxNormalization());
            for (int t : real) {
                double fp = 0;
                for (int i = 0; i < e; i++) {
                    fp += fraction[i] * f.router().probs()[t * e + i];
                }
                for (int j = 0; j < e; j++) {
                    want[t * e + j] = (double) e / real.length * f.router().probs()[t * e + j] * (fraction[j] - fp) / groups;
                }
            }
        }
        assertClose(want, got, "dL_aux/dz");
    }

    /**
     * SPEC §5: \( \partial L_z / \partial z_{t,j} = (2/T_g) \operatorname{lse}(z_t)\, p_{t,j} / G \) for the real
     * tokens of each group, 0 for padding, for every router (noisy top-k: on the clean logits).
     */
    @Property(tries = 300)
    void zLossLogitGradientIsTheClosedForm(@ForAll BackwardCase.RouterKind router, @ForAll long seed) {
        BackwardCase c = BackwardCase.random(router, BackwardCase.CapacityKind.FACTOR, Priority.RANK_MAJOR, Activation.RELU, seed);
        ReferenceLayer layer = c.layer();
        ReferenceForward f = layer.forward(c.x(), c.tokens(), c.options());
        double[] got = layer.logitGradient(f, LossTerm.Z);

        int e = c.config().experts();
        int groups = c.options().groups();
        int groupSize = c.tokens() / groups;
        double[] want = new double[c.tokens() * e];
        for (int g = 0; g < groups; g++) {
            int[] real = realTokens(f, g, groupSize);
            for (int t : real) {
                double lse = Softmax.logSumExp(f.router().logits(), t * e, e);
                for (int j = 0; j < e; j++) {
                    want[t * e + j] = 2.0 / real.length * lse * f.router().probs()[t * e + j] / groups;
                }
            }
        }
        assertClose(want, got, "dL_z/dz");
    }

    /**
     * SPEC §10: through RENORMALIZE gates only the selected logits of a token receive gradient (after
     * capacity: only the kept ones), exactly 0 for the rest; through NONE gates every logit of a
     * token with a kept choice does (through the softmax), so the unselected ones are nonzero.
     */
    @Property(tries = 300)
    void renormalisedGatesSendGradientOnlyToTheirLogits(@ForAll BackwardCase.CapacityKind capacity, @ForAll Priority priority,
                                                        @ForAll long seed) {
        BackwardCase c = BackwardCase.random(BackwardCase.RouterKind.TOKEN_CHOICE, capacity, priority, Activation.RELU, seed);
        TokenChoiceRouterConfig tc = (TokenChoiceRouterConfig) c.config().router();
        Assume.that(tc.k() < c.config().experts());
        ReferenceLayer layer = c.layer();
        ReferenceForward f = layer.forward(c.x(), c.tokens(), c.options());
        double[] dGate = c.randomGateGradient(seed);
        double[] dz = layer.logitGradientFromGates(f, dGate);
        int e = c.config().experts();
        int k = tc.k();
        for (int t = 0; t < c.tokens(); t++) {
            boolean anyKept = false;
            boolean[] receives = new boolean[e];
            for (int j = 0; j < k; j++) {
                int ex = f.plan().selected()[t * k + j];
                boolean kept = f.plan().isKept(t, j);
                anyKept |= kept;
                if (ex >= 0 && (tc.renormTiming() == RenormTiming.BEFORE_CAPACITY || kept)) {
                    receives[ex] = true;
                }
            }
            for (int ex = 0; ex < e; ex++) {
                double v = dz[t * e + ex];
                if (tc.gates() == GateNormalization.RENORMALIZE && !receives[ex]) {
                    assertEquals(0.0, v, "token " + t + " expert " + ex + " is not selected (or not kept after capacity)");
                } else if (tc.gates() == GateNormalization.NONE && anyKept) {
                    assertTrue(v != 0, "NONE gates reach every logit of token " + t + ", but expert " + ex + " got 0");
                }
            }
        }
    }

    /**
     * SPEC §12 (research §2.6): k = 1 with RENORMALIZE gates makes every gate the constant 1, so
     * with α = β = 0 the router receives exactly zero gradient from the task loss, and the input's
     * gradient is the expert path alone (the same as with the router frozen).
     */
    @Property(tries = 200)
    void topOneRenormalisedGivesTheRouterNoTaskGradient(@ForAll BackwardCase.CapacityKind capacity, @ForAll Priority priority,
                                                        @ForAll Activation activation, @ForAll long seed) {
        BackwardCase base = BackwardCase.random(BackwardCase.RouterKind.TOKEN_CHOICE, capacity, priority, activation, seed);
        TokenChoiceRouterConfig tc = (TokenChoiceRouterConfig) base.config().router();
        MoeConfig config = base.config().toBuilder()
                .router(new TokenChoiceRouterConfig(1, GateNormalization.RENORMALIZE, tc.renormTiming(),
                        io.github.moe4j.api.SecondExpertPolicy.ALL, tc.jitter(), tc.jitterTarget()))
                .losses(LossWeights.of()).build();
        BackwardCase c = base.with(config);
        ReferenceLayer layer = c.layer();
        ReferenceForward f = layer.forward(c.x(), c.tokens(), c.options());
        ReferenceGradients g = layer.backward(f, c.dY(), NONE);
        for (double v : g.router()) {
            assertEquals(0.0, v);
        }
        if (g.routerBias() != null) {
            for (double v : g.routerBias()) {
                assertEquals(0.0, v);
            }
        }
        ReferenceGradients expertPathOnly = layer.backward(f, c.dY(), EnumSet.of(Freeze.ROUTER));
        assertTrue(java.util.Arrays.equals(expertPathOnly.input(), g.input()));
    }

    /**
     * research §5.4: with k = E every token selects every expert, so f is the constant 1/E
     * (TOPK_NORMALIZED) or 1 (TOPK_COUNT) and \( \partial L_{aux}/\partial z = (E/T) p (f_j - \sum_i f_i p_i) = 0 \).
     * (TOP1 counts first choices only, so its f is not constant and SPEC §12's "k = E gives zero aux
     * gradient" does not hold for it: see {@code BackwardTest.topOneAuxGradientIsNotZeroAtKEqualsE}.)
     */
    @Property(tries = 200)
    void kEqualsEGivesNoAuxGradientForTheTopKConventions(@ForAll BackwardCase.CapacityKind capacity, @ForAll long seed,
                                                         @ForAll boolean normalised) {
        BackwardCase base = BackwardCase.random(BackwardCase.RouterKind.TOKEN_CHOICE, capacity, Priority.RANK_MAJOR, Activation.RELU, seed);
        TokenChoiceRouterConfig tc = (TokenChoiceRouterConfig) base.config().router();
        int e = base.config().experts();
        MoeConfig config = base.config().toBuilder()
                .router(new TokenChoiceRouterConfig(e, tc.gates(), tc.renormTiming(), io.github.moe4j.api.SecondExpertPolicy.ALL,
                        tc.jitter(), tc.jitterTarget()))
                .losses(base.config().losses().aux(1, normalised ? AuxNormalization.TOPK_NORMALIZED : AuxNormalization.TOPK_COUNT))
                .build();
        BackwardCase c = base.with(config);
        ReferenceLayer layer = c.layer();
        ReferenceForward f = layer.forward(c.x(), c.tokens(), c.options());
        double[] dz = layer.logitGradient(f, LossTerm.AUX);
        // computed as p_j (dp_j − Σ_i p_i dp_i) with every dp_i the same constant E f / T_g ≤ E: the
        // difference of two roundings of a number at most E, i.e. a few ulps of E
        double roundoff = 16 * Math.ulp((double) e);
        for (double v : dz) {
            assertEquals(0.0, v, roundoff);
        }
    }

    private static int[] realTokens(ReferenceForward f, int g, int groupSize) {
        return java.util.stream.IntStream.range(g * groupSize, (g + 1) * groupSize).filter(t -> f.router().realTokens()[t]).toArray();
    }

    private static void assertClose(double[] want, double[] got, String what) {
        assertEquals(want.length, got.length, what + " length");
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got[i], CLOSED_FORM, what + "[" + i + "]");
        }
    }
}

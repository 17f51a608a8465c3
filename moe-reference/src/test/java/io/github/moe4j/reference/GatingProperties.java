package io.github.moe4j.reference;

import static io.github.moe4j.reference.ReferenceCases.RouterKind.NOISY_TOP_K;
import static io.github.moe4j.reference.ReferenceCases.RouterKind.TOKEN_CHOICE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.GateNormalization;
import io.github.moe4j.api.Mode;
import io.github.moe4j.api.Noise;
import io.github.moe4j.api.RenormTiming;
import io.github.moe4j.api.SecondExpertPolicy;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import io.github.moe4j.reference.ReferenceCases.CapacityKind;
import io.github.moe4j.reference.ReferenceCases.RouterKind;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.Set;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.statistics.Statistics;

/** Token selection and gate values of the top-k routers (SPEC §3, §6; research §14.11 items 1–3). */
class GatingProperties {
    private static final Set<RouterKind> TOP_K = EnumSet.of(TOKEN_CHOICE, NOISY_TOP_K);
    private static final Set<CapacityKind> ALL_CAPACITIES = EnumSet.allOf(CapacityKind.class);

    static int[] ints(int[] a, int t, int n) {
        return Arrays.copyOfRange(a, t * n, (t + 1) * n);
    }

    @Provide
    Arbitrary<MoeCase> topKCases() {
        return ReferenceCases.cases(TOKEN_CHOICE, NOISY_TOP_K);
    }

    /** Top-k cases whose token-choice gates are RENORMALIZE. */
    @Provide
    Arbitrary<MoeCase> renormalizedCases() {
        return topKCases().map(c -> c.config().router() instanceof TokenChoiceRouterConfig tc
                ? c.withConfig(c.config().toBuilder().router(tc.withGates(GateNormalization.RENORMALIZE)).build()) : c);
    }

    /** Token-choice cases with NONE gates (so GShard's random policy, which needs RENORMALIZE, is off). */
    @Provide
    Arbitrary<MoeCase> unnormalizedCases() {
        return ReferenceCases.cases(TOKEN_CHOICE).map(c -> {
            TokenChoiceRouterConfig tc = (TokenChoiceRouterConfig) c.config().router();
            return c.withConfig(c.config().toBuilder()
                    .router(tc.withSecondExpertPolicy(SecondExpertPolicy.ALL).withGates(GateNormalization.NONE)).build());
        });
    }

    /** Each routed token selects k distinct experts with the k largest keys, best first, ties to the lower index; unrouted tokens select none. */
    @Property(tries = 500)
    void selectionIsTheKLargestKeysWithTiesToTheLowerIndex(@ForAll("topKCases") MoeCase c) {
        ReferenceCases.collectRouterAndCapacity(c, TOP_K, ALL_CAPACITIES, 4);
        ReferenceCases.collectShape(c, true);
        ReferenceForward f = c.forward();
        int k = c.k();
        int e = c.experts();
        boolean tie = false;
        for (int t = 0; t < c.tokens(); t++) {
            int[] s = ints(f.plan().selected(), t, k);
            if (!c.isRouted(t)) {
                int[] none = new int[k];
                Arrays.fill(none, -1);
                Compare.exactly("selection of unrouted padding token " + t, none, s, c);
                continue;
            }
            double[] keys = NaiveMoe.row(f.router().keys(), t, e);
            tie |= Arrays.stream(keys).distinct().count() < e;
            boolean[] in = new boolean[e];
            for (int j = 0; j < k; j++) {
                assertTrue(s[j] >= 0 && s[j] < e && !in[s[j]], "S_" + t + " = " + Arrays.toString(s) + " is not k distinct experts; " + c);
                in[s[j]] = true;
                if (j > 0) {
                    assertTrue(keys[s[j - 1]] > keys[s[j]] || (keys[s[j - 1]] == keys[s[j]] && s[j - 1] < s[j]),
                            "S_" + t + " = " + Arrays.toString(s) + " is not best first for keys " + Arrays.toString(keys) + "; " + c);
                }
            }
            double smallest = keys[s[k - 1]];
            for (int i = 0; i < e; i++) {
                if (!in[i]) {
                    assertTrue(keys[i] < smallest || (keys[i] == smallest && i > s[k - 1]),
                            "unselected expert " + i + " of token " + t + " beats S_t = " + Arrays.toString(s)
                                    + " for keys " + Arrays.toString(keys) + "; " + c);
                }
            }
            Compare.exactly("S_" + t + " against a sort by (key desc, index asc)", NaiveMoe.topK(keys, k), s, c);
        }
        Statistics.label("exact key tie in a row").collect(tie);
        Statistics.label("exact key tie in a row").coverage(cov -> cov.check(true).percentage(p -> p >= 5));
    }

    /** RENORMALIZE (and noisy top-k) gates before capacity are the softmax over the selected keys: each in [0, 1], the first ≥ 1/k, summing to 1. */
    @Property(tries = 300)
    void renormalizedGatesSumToOneBeforeCapacity(@ForAll("renormalizedCases") MoeCase c) {
        ReferenceCases.collectRouterAndCapacity(c, TOP_K, ALL_CAPACITIES, 4);
        ReferenceForward f = c.forward();
        int k = c.k();
        for (int t = 0; t < c.tokens(); t++) {
            if (!c.isRouted(t)) {
                continue;
            }
            int[] s = ints(f.plan().selected(), t, k);
            double[] g = NaiveMoe.row(f.plan().gateBeforeCapacity(), t, k);
            Compare.close("gates of token " + t + " against softmax over the selected keys",
                    NaiveMoe.softmaxOver(NaiveMoe.row(f.router().keys(), t, c.experts()), s), g, Compare.REORDERED, c);
            Compare.close("sum of the gates of token " + t, 1.0, Arrays.stream(g).sum(), Compare.REORDERED, c);
            for (double gj : g) {
                assertTrue(gj >= 0 && gj <= 1, "gate " + gj + " of token " + t + " is outside [0, 1]; " + c);
            }
            Compare.atMost("1/k − first gate of token " + t, 1.0 / k - g[0], 0, Compare.REORDERED, c);
        }
    }

    /** NONE gates are the router probabilities p of the selected experts, unchanged, and a token's gates sum to at most 1. */
    @Property(tries = 200)
    void noneGatesEqualTheRouterProbabilities(@ForAll("unnormalizedCases") MoeCase c) {
        ReferenceCases.collectRouterAndCapacity(c, EnumSet.of(TOKEN_CHOICE), ALL_CAPACITIES, 4);
        ReferenceForward f = c.forward();
        int k = c.k();
        int e = c.experts();
        for (int t = 0; t < c.tokens(); t++) {
            if (!c.isRouted(t)) {
                continue;
            }
            int[] s = ints(f.plan().selected(), t, k);
            double[] p = NaiveMoe.softmax(NaiveMoe.row(f.router().logits(), t, e));
            Compare.close("p of token " + t + " against softmax(z)", p, NaiveMoe.row(f.router().probs(), t, e), Compare.REORDERED, c);
            double sum = 0;
            for (int j = 0; j < k; j++) {
                assertEquals(f.router().probs()[t * e + s[j]], f.plan().gateBeforeCapacity()[t * k + j], 0.0,
                        "NONE gate (" + t + ", " + j + ") is p itself; " + c);
                sum += f.plan().gateBeforeCapacity()[t * k + j];
            }
            Compare.atMost("sum of the NONE gates of token " + t, sum, 1.0, Compare.REORDERED, c);
        }
    }

    /** After capacity a dropped gate is exactly 0 and a kept one keeps its gate, renormalised over the kept for RENORMALIZE with AFTER_CAPACITY. */
    @Property(tries = 400)
    void gatesAfterCapacityFollowTheRenormalisationTiming(@ForAll("topKCases") MoeCase c) {
        ReferenceCases.collectRouterAndCapacity(c, TOP_K, ALL_CAPACITIES, 4);
        boolean after = c.config().router() instanceof TokenChoiceRouterConfig tc && tc.gates() == GateNormalization.RENORMALIZE
                && tc.renormTiming() == RenormTiming.AFTER_CAPACITY;
        Statistics.label("renormalised after capacity").collect(after);
        ReferenceForward f = c.forward();
        RoutingPlan plan = f.plan();
        int k = c.k();
        boolean dropped = false;
        for (int token = 0; token < c.tokens(); token++) {
            final int t = token;
            if (!c.isRouted(t)) {
                Compare.bitwise("gates of unrouted token " + t, new double[k], NaiveMoe.row(plan.gate(), t, k), c);
                continue;
            }
            int[] s = ints(plan.selected(), t, k);
            int[] kept = java.util.stream.IntStream.range(0, k).filter(j -> plan.isKept(t, j)).toArray();
            dropped |= kept.length < k;
            double[] want = new double[k];
            if (after) {
                double[] g = NaiveMoe.softmaxOver(NaiveMoe.row(f.router().logits(), t, c.experts()),
                        Arrays.stream(kept).map(j -> s[j]).toArray());
                for (int m = 0; m < kept.length; m++) {
                    want[kept[m]] = g[m];
                }
            } else {
                for (int j : kept) {
                    want[j] = plan.gateBeforeCapacity()[t * k + j];
                }
            }
            double[] got = NaiveMoe.row(plan.gate(), t, k);
            Compare.close("gates after capacity of token " + t, want, got, Compare.REORDERED, c);
            for (int j = 0; j < k; j++) {
                if (!plan.isKept(t, j)) {
                    assertEquals(0.0, got[j], 0.0, "gate of dropped (" + t + ", " + j + ") must be exactly 0; " + c);
                } else if (!after) {
                    assertEquals(want[j], got[j], 0.0, "kept gate (" + t + ", " + j + ") must be the gate before capacity; " + c);
                }
            }
        }
        Statistics.label("some assignment dropped").collect(dropped);
        Statistics.label("some assignment dropped").coverage(cov -> cov.check(true).percentage(p -> p >= 15));
        Statistics.label("renormalised after capacity with a drop").collect(after && dropped);
        Statistics.label("renormalised after capacity with a drop").coverage(cov -> cov.check(true).count(n -> n >= 1));
    }

    /** Top-2 token-choice cases with GShard's RANDOM(θ) second-expert policy, dropless. */
    @Provide
    Arbitrary<MoeCase> randomPolicyCases() {
        return Combinators.combine(ReferenceCases.cases(TOKEN_CHOICE).filter(c -> c.experts() >= 2), Arbitraries.of(0.05, 0.2, 0.5, 1.0))
                .as((c, theta) -> {
                    TokenChoiceRouterConfig tc = (TokenChoiceRouterConfig) c.config().router();
                    return c.withConfig(c.config().toBuilder().capacity(Capacity.dropless())
                            .router(new TokenChoiceRouterConfig(2, GateNormalization.RENORMALIZE, tc.renormTiming(),
                                    SecondExpertPolicy.random(theta), tc.jitter(), tc.jitterTarget())).build());
                });
    }

    /** GShard's RANDOM(θ) keeps rank 1 iff u_t < g_{t,S_t[1]}/θ in training (u_t from moe-api's noise) and always in inference; rank 0 always. */
    @Property(tries = 200)
    void randomSecondExpertPolicyKeepsRankOneIffUniformBelowGateOverTheta(@ForAll("randomPolicyCases") MoeCase c) {
        ReferenceForward f = c.forward();
        double theta = ((TokenChoiceRouterConfig) c.config().router()).secondExpertPolicy().threshold();
        float[] u = c.mode() == Mode.TRAINING ? Noise.draw(c.config(), c.tokens(), c.seed(), c.step()).secondExpertUniform().toArray() : null;
        for (int t = 0; t < c.tokens(); t++) {
            if (!c.isRouted(t)) {
                continue;
            }
            assertTrue(f.plan().isKept(t, 0), "rank 0 of token " + t + " is dropped without a capacity limit; " + c);
            int[] s = ints(f.plan().selected(), t, 2);
            double g1 = NaiveMoe.softmaxOver(NaiveMoe.row(f.router().logits(), t, c.experts()), s)[1];
            if (u != null && Math.abs(u[t] - g1 / theta) < 1e-12) {
                continue; // too close to call with a re-ordered g1
            }
            boolean keep = u == null || u[t] < g1 / theta;
            Statistics.label("rank 1 kept").collect(keep);
            assertEquals(keep, f.plan().isKept(t, 1), "rank 1 of token " + t + ": u = " + (u == null ? "none" : u[t])
                    + ", g1/θ = " + g1 / theta + "; " + c);
        }
        Statistics.label("rank 1 kept").coverage(cov -> {
            cov.check(true).percentage(p -> p >= 3);
            cov.check(false).percentage(p -> p >= 3);
        });
    }
}

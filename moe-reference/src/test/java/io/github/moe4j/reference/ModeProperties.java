package io.github.moe4j.reference;

import static io.github.moe4j.reference.ReferenceCases.RouterKind.TOKEN_CHOICE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Mode;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.Noise;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.SecondExpertPolicy;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import io.github.moe4j.reference.ReferenceCases.CapacityKind;
import io.github.moe4j.reference.ReferenceCases.RouterKind;
import java.util.EnumSet;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.statistics.Statistics;

/** Inference and training, seeds and jitter (SPEC §2; research §14.11 items 31–32). */
class ModeProperties {

    /** Two forward results are the same bit for bit: routing, gates, output and losses. */
    static void assertIdentical(ReferenceForward a, ReferenceForward b, MoeCase c) {
        Compare.exactly("selection", a.plan().selected(), b.plan().selected(), c);
        Compare.exactly("slots", a.plan().slot(), b.plan().slot(), c);
        Compare.bitwise("gates", a.plan().gate(), b.plan().gate(), c);
        Compare.bitwise("y", a.y(), b.y(), c);
        Compare.bitwise("logits", a.router().logits(), b.router().logits(), c);
        Compare.bitwise("keys", a.router().keys(), b.router().keys(), c);
        assertEquals(a.losses(), b.losses(), "losses; " + c);
    }

    @Provide
    Arbitrary<Tuple.Tuple3<MoeCase, Long, Long>> inferenceCasesAndAnotherSeed() {
        return Combinators.combine(ReferenceCases.cases().map(c -> c.withMode(Mode.INFERENCE)), Arbitraries.longs(), Arbitraries.longs())
                .as(Tuple::of);
    }

    /** Inference draws nothing: another seed and step give the same result bit for bit. */
    @Property(tries = 150)
    void inferenceIsIndependentOfSeedAndStep(@ForAll("inferenceCasesAndAnotherSeed") Tuple.Tuple3<MoeCase, Long, Long> s) {
        MoeCase c = s.get1();
        ReferenceCases.collectRouterAndCapacity(c, EnumSet.allOf(RouterKind.class), EnumSet.allOf(CapacityKind.class), 4);
        assertIdentical(c.forward(), c.withNoiseSeed(s.get2(), s.get3()).forward(), c);
    }

    @Provide
    Arbitrary<MoeCase> trainingCases() {
        return ReferenceCases.cases().map(c -> c.withMode(Mode.TRAINING));
    }

    /** Training with the same seed and step twice gives the same result bit for bit. */
    @Property(tries = 150)
    void trainingIsBitIdenticalForTheSameSeedAndStep(@ForAll("trainingCases") MoeCase c) {
        ReferenceCases.collectRouterAndCapacity(c, EnumSet.allOf(RouterKind.class), EnumSet.allOf(CapacityKind.class), 4);
        assertIdentical(c.forward(), c.forward(), c);
    }

    /** Any case with every source of training noise turned off: no jitter, every second choice kept, no learned noise. */
    @Provide
    Arbitrary<MoeCase> noiselessCases() {
        return ReferenceCases.cases().map(c -> {
            MoeConfig.Builder b = c.config().toBuilder();
            if (c.config().router() instanceof TokenChoiceRouterConfig tc) {
                b.router(tc.withJitter(0, tc.jitterTarget()).withSecondExpertPolicy(SecondExpertPolicy.ALL));
            } else if (c.config().router() instanceof NoisyTopKRouterConfig n) {
                b.router(new NoisyTopKRouterConfig(n.k(), NoisyTopKRouterConfig.Noise.NONE, n.noiseEpsilon()));
            }
            return c.withConfig(b.build());
        });
    }

    /** With no jitter, no learned noise and every second choice kept, training gives the inference result bit for bit. */
    @Property(tries = 150)
    void trainingWithoutNoiseSourcesEqualsInference(@ForAll("noiselessCases") MoeCase c) {
        ReferenceCases.collectRouterAndCapacity(c, EnumSet.allOf(RouterKind.class), EnumSet.allOf(CapacityKind.class), 4);
        assertIdentical(c.withMode(Mode.INFERENCE).forward(), c.withMode(Mode.TRAINING).forward(), c);
    }

    @Provide
    Arbitrary<MoeCase> jitteredCases() {
        return Combinators.combine(ReferenceCases.cases(TOKEN_CHOICE), Arbitraries.of(0.01, 0.3),
                        Arbitraries.of(TokenChoiceRouterConfig.JitterTarget.class))
                .as((c, eps, target) -> {
                    TokenChoiceRouterConfig tc = (TokenChoiceRouterConfig) c.config().router();
                    return c.withConfig(c.config().toBuilder().router(tc.withJitter(eps, target)).build()).withMode(Mode.TRAINING);
                });
    }

    /** Jitter multiplies the router input by u ∈ [1 − ε, 1 + ε]; the experts get x (ROUTER_ONLY) or the jittered x (ROUTER_AND_EXPERTS). */
    @Property(tries = 150)
    void jitterReachesTheExpertsOnlyWhenAsked(@ForAll("jitteredCases") MoeCase c) {
        TokenChoiceRouterConfig tc = (TokenChoiceRouterConfig) c.config().router();
        Statistics.label("jitter target").collect(tc.jitterTarget());
        ReferenceForward f = c.forward();
        double[] x = c.input();
        float[] u = Noise.draw(c.config(), c.tokens(), c.seed(), c.step()).jitter().toArray();
        double[] jittered = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            assertTrue(u[i] >= 1 - tc.jitter() - 1e-7 && u[i] <= 1 + tc.jitter() + 1e-7, "u = " + u[i] + "; " + c);
            jittered[i] = x[i] * u[i];
        }
        Compare.close("router input x ⊙ u", jittered, f.router().routerInput(), Compare.REORDERED, c);
        boolean toExperts = tc.jitterTarget() == TokenChoiceRouterConfig.JitterTarget.ROUTER_AND_EXPERTS;
        double[] want = toExperts ? jittered : x;
        int d = c.d();
        for (int e = 0; e < c.experts(); e++) {
            int[] tokens = f.dispatch().tokenOf()[e];
            Compare.close("rows dispatched to expert " + e, MoeCase.rows(want, d, tokens), f.dispatch().inputs()[e], Compare.REORDERED, c);
            if (!toExperts) {
                Compare.bitwise("rows dispatched to expert " + e + " are x itself", MoeCase.rows(x, d, tokens), f.dispatch().inputs()[e], c);
            }
        }
    }
}

package io.github.moe4j.reference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.AuxNormalization;
import io.github.moe4j.api.ExpertChoiceRouterConfig;
import io.github.moe4j.api.Freeze;
import io.github.moe4j.api.GateNormalization;
import io.github.moe4j.api.LossWeights;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.PaddingPolicy;
import io.github.moe4j.api.Priority;
import io.github.moe4j.api.RenormTiming;
import io.github.moe4j.api.SecondExpertPolicy;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import net.jqwik.api.Assume;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.statistics.Statistics;

/**
 * The reference backward against central finite differences of the reference forward, and the
 * gradient facts of SPEC §5, §10 and §12, over random small layers of every router, capacity,
 * priority and expert kind.
 */
class BackwardProperties {
    private static final Set<Freeze> NONE = EnumSet.noneOf(Freeze.class);

    /**
     * The smallest decision gap a finite-difference point must have. One step h = 2^-20 moves a key
     * by at most h·|∂key/∂parameter|; with the generator's scales (|x|, |W|, |ε| below about 5 in
     * all but a vanishing fraction of draws) that is under 10h, so a gap of 1e-4 ≈ 100h leaves every
     * discrete decision unchanged with a factor of 10 to spare (SPEC §12: margins above 10× the step).
     */
    private static final double MARGIN = 1e-4;

    /**
     * Round-off units allowed in a central difference. L is a sum of terms of total magnitude
     * \( L_{mag} = \sum |dY \odot y| + |\text{weighted losses}| \); each evaluation carries an error of a few
     * \( u L_{mag} \) (u = 2^-53), which the difference divides by 2h. Over 3000 random cases the worst
     * error was 13 units of \( u L_{mag} / h \); 64 leaves a factor of 5.
     */
    private static final double ROUNDOFF_UNITS = 64;

    /** The relative accuracy demanded: truncation \( h^2 L'''/6 \) is about 1e-12·|L'''|, measured at most 2e-8 relative. */
    private static final double RELATIVE = 1e-6;

    /**
     * Every element of every gradient (input, router, router bias, noise weight, expert weights and
     * biases) equals the central difference of \( L = \sum dY \odot y + \) the weighted losses:
     * \( |fd - an| \le 10^{-6} \max(|an|, s) \), where the floor s is the round-off of the difference
     * expressed as a magnitude, \( s = 10^{6} \cdot 64\, u L_{mag} / h \) (see {@link #ROUNDOFF_UNITS}).
     * Points closer than {@link #MARGIN} to a discrete decision are discarded, at most one in two.
     */
    @Property(tries = 4000, maxDiscardRatio = 1)
    void everyGradientMatchesCentralDifferences(@ForAll BackwardCase.RouterKind router, @ForAll BackwardCase.CapacityKind capacity,
                                                @ForAll Priority priority, @ForAll Activation activation, @ForAll long seed) {
        BackwardCase c = BackwardCase.random(router, capacity, priority, activation, seed);
        ReferenceLayer layer = c.layer();
        ReferenceForward f = layer.forward(c.x(), c.tokens(), c.options());
        double margin = SelectionMargin.of(f);
        Statistics.label("margin").collect(margin > MARGIN ? "far from every decision" : "too close: discarded");
        Assume.that(margin > MARGIN);
        label(c, f);

        ReferenceGradients g = layer.backward(f, c.dY(), NONE);
        double lossMagnitude = Math.abs(f.losses().total());
        for (int i = 0; i < c.dY().length; i++) {
            lossMagnitude += Math.abs(c.dY()[i] * f.y()[i]);
        }
        assertMatches(c, margin, lossMagnitude, FiniteDifferences.compare(c, g));
    }

    /**
     * The router half alone: {@link ReferenceLayer#backwardFromGates} equals the central difference of
     * \( L = \sum dG \odot g + \) the weighted losses with respect to the input and the router's
     * parameters, for a dG that is nonzero everywhere, also where a choice was dropped (whose gate is
     * the constant 0). Same tolerance and margin as {@link #everyGradientMatchesCentralDifferences}.
     */
    @Property(tries = 2000, maxDiscardRatio = 1)
    void gateGradientsMatchCentralDifferences(@ForAll BackwardCase.RouterKind router, @ForAll BackwardCase.CapacityKind capacity,
                                              @ForAll Priority priority, @ForAll long seed) {
        BackwardCase c = BackwardCase.random(router, capacity, priority, Activation.RELU, seed);
        ReferenceLayer layer = c.layer();
        ReferenceForward f = layer.forward(c.x(), c.tokens(), c.options());
        double margin = SelectionMargin.of(f);
        Assume.that(margin > MARGIN);
        double[] dGate = c.randomGateGradient(~seed);
        ReferenceGradients g = layer.backwardFromGates(f, dGate, NONE);
        assertEquals(null, g.wIn());
        double lossMagnitude = Math.abs(f.losses().total());
        for (int i = 0; i < dGate.length; i++) {
            lossMagnitude += Math.abs(dGate[i] * f.plan().gate()[i]);
        }
        assertMatches(c, margin, lossMagnitude, FiniteDifferences.compare(c, g, (w, x) -> c.gateLoss(w, x, dGate)));
    }

    private static void assertMatches(BackwardCase c, double margin, double lossMagnitude, List<FiniteDifferences.Comparison> comparisons) {
        double floor = ROUNDOFF_UNITS * 0x1p-53 * lossMagnitude / FiniteDifferences.STEP / RELATIVE;
        List<String> failures = new ArrayList<>();
        for (FiniteDifferences.Comparison cmp : comparisons) {
            for (int i = 0; i < cmp.analytic().length; i++) {
                double an = cmp.analytic()[i];
                double fd = cmp.numeric()[i];
                double tolerance = RELATIVE * Math.max(Math.abs(an), floor);
                if (!(Math.abs(fd - an) <= tolerance)) {
                    failures.add(String.format("%s[%d]: analytic %.12g, central difference %.12g, |diff| %.3g > %.3g",
                            cmp.name(), i, an, fd, Math.abs(fd - an), tolerance));
                }
            }
        }
        assertTrue(failures.isEmpty(), () -> failures.size() + " gradient elements differ from central differences in " + c
                + " (margin " + margin + "):\n" + String.join("\n", failures.subList(0, Math.min(10, failures.size()))));
    }

    /** Labels what the case exercised and checks that each feature occurs often enough to be tested. */
    private static void label(BackwardCase c, ReferenceForward f) {
        RoutingPlan plan = f.plan();
        boolean dropped = false;
        for (int i = 0; i < plan.selected().length; i++) {
            dropped |= plan.selected()[i] >= 0 && plan.slot()[i] < 0;
        }
        MoeConfig config = c.config();
        boolean randomPolicy = config.router() instanceof TokenChoiceRouterConfig tc
                && tc.secondExpertPolicy().kind() == SecondExpertPolicy.Kind.RANDOM && f.router().secondExpertUniform() != null;
        boolean afterRenorm = config.router() instanceof TokenChoiceRouterConfig tc2 && tc2.gates() == GateNormalization.RENORMALIZE
                && tc2.renormTiming() == RenormTiming.AFTER_CAPACITY;
        boolean jitterToExperts = f.router().jitter() != null && f.router().expertInput() == f.router().routerInput();
        Statistics.label("router").collect(c.routerKind());
        Statistics.label("dropped").collect(dropped && !(config.router() instanceof ExpertChoiceRouterConfig))
                .coverage(cov -> cov.check(true).percentage(p -> p > 10));
        boolean policyDropped = false;
        if (randomPolicy) {
            for (int t = 0; t < c.tokens(); t++) {
                policyDropped |= plan.selected()[t * 2] >= 0
                        && f.router().secondExpertUniform()[t] >= plan.gateBeforeCapacity()[t * 2 + 1]
                        / ((TokenChoiceRouterConfig) config.router()).secondExpertPolicy().threshold();
            }
        }
        Statistics.label("random policy dropped a second choice").collect(policyDropped)
                .coverage(cov -> cov.check(true).percentage(p -> p > 2));
        Statistics.label("renormalised after a drop").collect(afterRenorm && dropped)
                .coverage(cov -> cov.check(true).percentage(p -> p > 2));
        Statistics.label("smooth load").collect(f.router().probInTopK() != null)
                .coverage(cov -> cov.check(true).percentage(p -> p > 5));
        Statistics.label("jitter feeds experts").collect(jitterToExperts).coverage(cov -> cov.check(true).percentage(p -> p > 2));
        Statistics.label("groups").collect(c.options().groups() > 1).coverage(cov -> cov.check(true).percentage(p -> p > 5));
        Statistics.label("padding").collect(c.options().paddingMask() != null && config.padding() == PaddingPolicy.NOT_ROUTED)
                .coverage(cov -> cov.check(true).percentage(p -> p > 5));
    }
}

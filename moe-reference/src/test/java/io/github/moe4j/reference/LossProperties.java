package io.github.moe4j.reference;

import static io.github.moe4j.reference.ReferenceCases.RouterKind.TOKEN_CHOICE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.AuxNormalization;
import io.github.moe4j.api.LossWeights;
import io.github.moe4j.api.Mode;
import io.github.moe4j.api.MoeLosses;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.reference.ReferenceCases.CapacityKind;
import io.github.moe4j.reference.ReferenceCases.RouterKind;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.DoubleRange;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Scale;
import net.jqwik.api.statistics.Statistics;

/**
 * The auxiliary losses (SPEC §4a, §5, §6; research §14.11 items 20, 21, 24, 26). Losses are
 * computed per group over its real tokens and averaged over the G groups; a group without real
 * tokens contributes 0 (the reading of the reference's javadoc, "per group over its real tokens,
 * averaged over groups", and RouterZLoss's "0 for no tokens").
 */
class LossProperties {

    @Provide
    Arbitrary<MoeCase> anyCases() {
        return ReferenceCases.cases();
    }

    @Provide
    Arbitrary<MoeCase> tokenChoiceCases() {
        return ReferenceCases.cases(TOKEN_CHOICE);
    }

    /** The mean over groups of a per-group quantity (0 for a group without real tokens). */
    interface PerGroup {
        double of(int[] realTokens);
    }

    static double averageOverGroups(MoeCase c, PerGroup q) {
        double sum = 0;
        for (int g = 0; g < c.groups(); g++) {
            int[] real = c.realTokens(g);
            sum += real.length == 0 ? 0 : q.of(real);
        }
        return sum / c.groups();
    }

    /** Every loss and the weighted total equal their definitions, recomputed per group over the real tokens and averaged over groups. */
    @Property(tries = 400)
    void lossesMatchTheirDefinitions(@ForAll("anyCases") MoeCase c) {
        // E·Σ f·P with f per its convention, mean lse², cv² of Importance = Σ gates and of Load (a count where
        // it is not the smooth estimator, which NoisyTopKProperties checks). In inference the logits and the
        // selection are recomputed here too; in training they are the reference's (jitter and noise are
        // checked elsewhere).
        ReferenceCases.collectRouterAndCapacity(c, EnumSet.allOf(RouterKind.class), EnumSet.allOf(CapacityKind.class), 4);
        ReferenceCases.collectShape(c, true);
        ReferenceForward f = c.forward();
        ReferenceWeights w = c.weights();
        int e = c.experts();
        int k = c.k();
        boolean inference = c.mode() == Mode.INFERENCE;
        double[] z = inference ? NaiveMoe.logits(c.input(), c.tokens(), c.d(), w.router(), w.routerBias(), e) : f.router().logits();
        double[] keys = inference ? z : f.router().keys();
        int[][] selected = new int[c.tokens()][];
        for (int t = 0; t < c.tokens(); t++) {
            selected[t] = inference ? NaiveMoe.topK(NaiveMoe.row(keys, t, e), k) : GatingProperties.ints(f.plan().selected(), t, k);
        }
        double aux = 0;
        if (c.isTokenChoice()) {
            AuxNormalization n = c.config().losses().auxNormalization();
            aux = averageOverGroups(c, real -> {
                double[] fraction = new double[e];
                double[] meanP = new double[e];
                for (int t : real) {
                    for (int j = 0; j < (n == AuxNormalization.TOP1 ? 1 : k); j++) {
                        fraction[selected[t][j]] += (n == AuxNormalization.TOPK_NORMALIZED ? 1.0 / k : 1.0) / real.length;
                    }
                    double[] p = NaiveMoe.softmax(NaiveMoe.row(z, t, e));
                    for (int i = 0; i < e; i++) {
                        meanP[i] += p[i] / real.length;
                    }
                }
                double s = 0;
                for (int i = 0; i < e; i++) {
                    s += fraction[i] * meanP[i];
                }
                return e * s;
            });
        }
        double zLoss = averageOverGroups(c, real -> Arrays.stream(real).mapToDouble(t -> {
            double lse = NaiveMoe.logSumExp(NaiveMoe.row(z, t, e));
            return lse * lse / real.length;
        }).sum());
        double importance = 0;
        double load = 0;
        boolean smoothLoad = c.isNoisy() && !inference && k < e
                && ((NoisyTopKRouterConfig) c.config().router()).noise() == NoisyTopKRouterConfig.Noise.LEARNED;
        if (c.isNoisy()) {
            importance = averageOverGroups(c, real -> {
                double[] imp = new double[e];
                for (int t : real) {
                    double[] g = NaiveMoe.softmaxOver(NaiveMoe.row(keys, t, e), selected[t]);
                    for (int j = 0; j < k; j++) {
                        imp[selected[t][j]] += g[j];
                    }
                }
                return NaiveMoe.cvSquared(imp);
            });
            load = smoothLoad ? f.losses().load() : averageOverGroups(c, real -> {
                double[] count = new double[e];
                for (int t : real) {
                    for (int s : selected[t]) {
                        count[s]++;
                    }
                }
                return NaiveMoe.cvSquared(count);
            });
        }
        MoeLosses got = f.losses();
        Compare.close("L_aux", aux, got.aux(), Compare.REORDERED, c);
        Compare.close("L_z", zLoss, got.z(), Compare.REORDERED, c);
        Compare.close("L_importance", importance, got.importance(), Compare.REORDERED, c);
        Compare.close("L_load", load, got.load(), Compare.REORDERED, c);
        LossWeights lw = c.config().losses();
        Compare.close("total", lw.aux() * aux + lw.z() * zLoss + lw.importance() * importance + lw.load() * load, got.total(),
                Compare.REORDERED, c);
    }

    /** A loss the router does not define is exactly 0: aux for noisy top-k and expert choice, importance and load for the others. */
    @Property(tries = 100)
    void undefinedLossesAreZero(@ForAll("anyCases") MoeCase c) {
        MoeLosses l = c.forward().losses();
        if (!c.isTokenChoice()) {
            assertEquals(0.0, l.aux(), 0.0, "aux of a " + c.config().router() + "; " + c);
        }
        if (!c.isNoisy()) {
            assertEquals(0.0, l.importance(), 0.0, "importance of a " + c.config().router() + "; " + c);
            assertEquals(0.0, l.load(), 0.0, "load of a " + c.config().router() + "; " + c);
        }
    }

    /** 0 ≤ L_aux/α ≤ E for TOP1 and TOPK_NORMALIZED (Σf = 1, P_i ≤ 1), and ≤ E·k for TOPK_COUNT (Σf = k). */
    @Property(tries = 200)
    void auxLossLiesBetweenZeroAndE(@ForAll("tokenChoiceCases") MoeCase c) {
        Statistics.label("f").collect(c.config().losses().auxNormalization());
        double aux = c.forward().losses().aux();
        double bound = c.experts() * (c.config().losses().auxNormalization() == AuxNormalization.TOPK_COUNT ? c.k() : 1);
        assertTrue(aux >= 0, "L_aux = " + aux + " < 0; " + c);
        Compare.atMost("L_aux", aux, bound, Compare.REORDERED, c);
    }

    /** The same layer with W_r = 0 and b_r = 0, so every logit is 0 and p is uniform. */
    static ReferenceForward withZeroLogits(MoeCase c) {
        ReferenceWeights w = c.weights();
        ReferenceWeights zero = new ReferenceWeights(w.d(), w.h(), w.experts(), new double[w.router().length],
                w.routerBias() == null ? null : new double[w.routerBias().length], w.noiseRouter(), w.wIn(), w.wGate(), w.wOut(), w.bIn(), w.bOut());
        return new ReferenceLayer(c.config(), zero).forward(c.input(), c.tokens(), c.options());
    }

    /** With uniform p (zero logits) L_aux/α = Σ_i f_i = 1 for TOP1 and TOPK_NORMALIZED and k for TOPK_COUNT, in every group with real tokens. */
    @Property(tries = 200)
    void auxLossIsOneOrKWhenProbabilitiesAreUniform(@ForAll("tokenChoiceCases") MoeCase c) {
        ReferenceCases.collectShape(c, true);
        Statistics.label("f").collect(c.config().losses().auxNormalization());
        double perGroup = c.config().losses().auxNormalization() == AuxNormalization.TOPK_COUNT ? c.k() : 1;
        Compare.close("L_aux with uniform p", averageOverGroups(c, real -> perGroup), withZeroLogits(c).losses().aux(), Compare.REORDERED, c);
    }

    /** L_z is never negative. */
    @Property(tries = 100)
    void zLossIsNonNegative(@ForAll("anyCases") MoeCase c) {
        double z = c.forward().losses().z();
        assertTrue(z >= 0, "L_z = " + z + "; " + c);
    }

    /** With every logit 0, lse = log E and L_z/β = (log E)² in every group with real tokens. */
    @Property(tries = 100)
    void zLossIsSquaredLogEForZeroLogits(@ForAll("anyCases") MoeCase c) {
        double logE = Math.log(c.experts());
        Compare.close("L_z with zero logits", averageOverGroups(c, real -> logE * logE), withZeroLogits(c).losses().z(), Compare.REORDERED, c);
    }

    /** Positive vectors with entries in [1, 100], like loads and importances. */
    @Provide
    Arbitrary<List<Double>> loads() {
        return Arbitraries.doubles().between(1, 100).ofScale(9).list().ofMinSize(1).ofMaxSize(8);
    }

    /** cv²(c·v) = cv²(v) for c > 0, up to the 1e-10 epsilons of tensor2tensor's cv_squared. */
    @Property(tries = 300)
    void cvSquaredIsScaleInvariant(@ForAll("loads") List<Double> values, @ForAll @DoubleRange(min = 0.1, max = 1000) @Scale(9) double scale) {
        // cv²(c·v) = Var/(μ² + 1e-10/c²), so the relative change is at most 1e-10·|1 − 1/c²|/μ²
        // (≤ 1e-8 here: μ ≥ 1, c ≥ 0.1), plus rounding.
        double[] v = values.stream().mapToDouble(Double::doubleValue).toArray();
        double[] scaled = Arrays.stream(v).map(a -> a * scale).toArray();
        double want = CoefficientOfVariation.squared(v);
        double got = CoefficientOfVariation.squared(scaled);
        double mean = Arrays.stream(v).sum() / (v.length + 1e-10);
        double epsilonEffect = 1e-10 * Math.abs(1 - 1 / (scale * scale)) / (mean * mean);
        Compare.close("cv²(c·v) against cv²(v), c = " + scale, want, got,
                new Compare.Tolerance(1e-15, epsilonEffect + 1e-12, "the 1e-10 epsilons of cv_squared, and rounding"), Arrays.toString(v));
        Compare.close("cv² against its definition", NaiveMoe.cvSquared(v), want, Compare.REORDERED, Arrays.toString(v));
    }

    /** cv² of equal values is 0 up to the epsilons: Var = x²·1e-20/n² from n + 1e-10, so cv² ≤ 1e-20. */
    @Property(tries = 100)
    void cvSquaredOfEqualValuesIsZero(@ForAll @DoubleRange(min = 1e-3, max = 1e3) @Scale(9) double x, @ForAll @IntRange(min = 1, max = 8) int n) {
        double[] v = new double[n];
        Arrays.fill(v, x);
        double cv = CoefficientOfVariation.squared(v);
        assertTrue(cv >= 0 && cv <= 1e-18, "cv² of " + v.length + " copies of " + x + " is " + cv);
    }

    /** cv²([3, 3, 1, 1]) = 1/4, the population variance of tensor2tensor's cv_squared (unbiased would give 1/3). */
    @Example
    void cvSquaredUsesThePopulationVariance() {
        assertEquals(0.25, CoefficientOfVariation.squared(new double[] {3, 3, 1, 1}), 1e-9);
    }
}

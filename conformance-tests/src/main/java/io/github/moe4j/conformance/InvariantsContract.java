package io.github.moe4j.conformance;

import io.github.moe4j.api.AuxNormalization;
import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.GateNormalization;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeLosses;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.RenormTiming;
import io.github.moe4j.api.Routing;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import io.github.moe4j.conformance.Coverage.Direction;
import io.github.moe4j.reference.ExpertNetwork;
import io.github.moe4j.reference.ReferenceWeights;
import java.util.Arrays;
import net.jqwik.api.ForAll;
import net.jqwik.api.From;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;

/**
 * Invariants of SPEC §12 that hold on any backend, each checked on the backend's own results
 * (and, where a closed form exists, against it rather than the oracle's forward pass).
 */
public interface InvariantsContract extends BackendContract {

    /**
     * Gates lie in [0, 1]; RENORMALIZE gates of a token sum to 1 over its k choices when none was
     * dropped (before capacity) or over its kept ones when any was kept (after capacity); so do
     * noisy top-k's. Within k times {@link Tolerances#gates}. 200 tries.
     */
    @Property(tries = 200)
    default void renormalizedGatesSumToOne(@ForAll @From(supplier = MoeCases.All.class) MoeCase c) throws Exception {
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            Oracle o = Oracle.of(c);
            try (Calls call = Calls.forward(b, c)) {
                Routing r = call.routing;
                MoeConfig config = c.config();
                double tol = config.choicesPerToken() * tolerances().gates(o.sizes()).abs();
                boolean renormalized = config.router() instanceof NoisyTopKRouterConfig
                        || config.router() instanceof TokenChoiceRouterConfig t && t.gates() == GateNormalization.RENORMALIZE;
                boolean after = config.router() instanceof TokenChoiceRouterConfig t && t.renormTiming() == RenormTiming.AFTER_CAPACITY;
                for (int i = 0; i < r.tokens(); i++) {
                    double sum = 0;
                    int kept = 0;
                    int chosen = 0;
                    for (int j = 0; j < r.choicesPerToken(); j++) {
                        float g = r.gate(i, j);
                        if (!(g >= -tol && g <= 1 + tol)) {
                            throw Compare.failure("gate (token " + i + ", choice " + j + ") = " + g + " is outside [0, 1]", c);
                        }
                        sum += g;
                        kept += r.isKept(i, j) ? 1 : 0;
                        chosen += r.expert(i, j) >= 0 ? 1 : 0;
                    }
                    boolean mustSumToOne = renormalized && kept > 0 && (after || kept == chosen);
                    if (mustSumToOne && Math.abs(sum - 1) > tol) {
                        throw Compare.failure("the renormalised gates of token " + i + " sum to " + sum + ", not 1 (tolerance " + tol
                                + "); kept " + kept + " of " + chosen, c);
                    }
                }
            }
        });
    }

    /**
     * Token choice with k = E and nothing dropped is the dense mixture \( \sum_e p_e f_e(x) \)
     * (both gate normalisations give p), computed here from the softmax of \( x W_r + b_r \) and
     * each expert network. Within {@link Tolerances#output}. 100 tries.
     */
    @Property(tries = 100)
    default void allExpertsDroplessIsTheDenseMixture(@ForAll @From(supplier = MoeCases.AllExpertsDropless.class) MoeCase c) throws Exception {
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            Oracle o = Oracle.of(c);
            try (Calls call = Calls.forward(b, c)) {
                double[] dense = denseMixture(c);
                Compare.floats("output [T, d] vs the dense mixture sum_e p_e f_e(x)", dense, call.forward.output(),
                        tolerances().output(o.sizes()), c);
            }
        });
    }

    /** No expert keeps more than C assignments in a group, and every slot is below C. 200 tries. */
    @Property(tries = 200)
    default void noExpertExceedsItsCapacity(@ForAll @From(supplier = MoeCases.All.class) MoeCase c) throws Exception {
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            try (Calls call = Calls.forward(b, c)) {
                Routing r = call.routing;
                int e = c.config().experts();
                int cap = c.config().capacityPerExpert(Math.max(1, c.tokensPerGroup()));
                for (int g = 0; g < c.groups(); g++) {
                    int[] kept = new int[e];
                    for (int i = g * c.tokensPerGroup(); i < (g + 1) * c.tokensPerGroup(); i++) {
                        for (int j = 0; j < r.choicesPerToken(); j++) {
                            if (r.isKept(i, j)) {
                                kept[r.expert(i, j)]++;
                                if (r.slot(i, j) >= cap) {
                                    throw Compare.failure("(token " + i + ", choice " + j + ") has slot " + r.slot(i, j) + " but C = " + cap, c);
                                }
                            }
                        }
                    }
                    for (int x = 0; x < e; x++) {
                        if (kept[x] > cap) {
                            throw Compare.failure("expert " + x + " kept " + kept[x] + " assignments in group " + g + " but C = " + cap
                                    + "; kept per group " + Arrays.toString(kept), c);
                        }
                    }
                }
            }
        });
    }

    /**
     * A dropped assignment contributes exactly 0: a token with nothing kept (dropped by capacity,
     * or padding that is not routed) has an output row of exact zeros. 200 tries, capacity fixed
     * at 0 to 4 so that drops are common.
     */
    @Property(tries = 200)
    default void droppedAssignmentsContributeExactlyZero(@ForAll @From(supplier = MoeCases.FixedCapacity.class) MoeCase c) throws Exception {
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            try (Calls call = Calls.forward(b, c)) {
                Routing r = call.routing;
                Tensor y = call.forward.output();
                int d = c.config().modelDim();
                for (int i = 0; i < r.tokens(); i++) {
                    boolean any = false;
                    for (int j = 0; j < r.choicesPerToken(); j++) {
                        any |= r.isKept(i, j);
                    }
                    for (int col = 0; !any && col < d; col++) {
                        if (y.get(i * d + col) != 0f) {
                            throw Compare.failure("token " + i + " has nothing kept (experts " + Arrays.toString(RoutingChecks.row(r, i))
                                    + ", slots all -1) but output[" + i + ", " + col + "] = " + y.get(i * d + col) + " instead of exactly 0", c);
                        }
                    }
                }
            }
        });
    }

    /** Inference draws no noise: two seeds and steps give bit-identical output, routing and losses. 60 tries. */
    @Property(tries = 60)
    default void inferenceIgnoresTheSeed(@ForAll @From(supplier = MoeCases.All.class) MoeCase c, @ForAll long otherSeed) throws Exception {
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            ForwardOptions base = c.options();
            ForwardOptions one = new ForwardOptions(io.github.moe4j.api.Mode.INFERENCE, c.noiseSeed(), 0, base.groups(), base.paddingMask(), null);
            ForwardOptions two = new ForwardOptions(io.github.moe4j.api.Mode.INFERENCE, otherSeed, 5, base.groups(), base.paddingMask(), null);
            try (MoeLayer layer = b.createLayer(c.config(), c.weights()); MoeForward f1 = layer.forward(c.input(), one);
                 MoeForward f2 = layer.forward(c.input(), two)) {
                Compare.bits("inference output with seeds " + c.noiseSeed() + " and " + otherSeed, f1.output(), f2.output(), c);
                if (!f1.routing().equals(f2.routing()) || !f1.losses().equals(f2.losses())) {
                    throw Compare.failure("inference routing or losses depend on the seed: " + f1.routing() + " " + f1.losses() + " vs "
                            + f2.routing() + " " + f2.losses(), c);
                }
            }
        });
    }

    /**
     * Nothing dropped, inference, one group: permuting the tokens (and the padding mask) permutes
     * the output rows and leaves every loss unchanged, within twice the tolerances (both sides
     * carry rounding error). 80 tries.
     */
    @Property(tries = 80)
    default void droplessOutputIsPermutationEquivariant(@ForAll @From(supplier = MoeCases.DroplessInference.class) MoeCase c,
                                                        @ForAll long permutationSeed) throws Exception {
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            Oracle o = Oracle.of(c);
            int t = c.tokens();
            int d = c.config().modelDim();
            int[] perm = permutation(t, permutationSeed);
            Tensor x = c.input();
            float[] px = new float[t * d];
            float[] pmask = new float[t];
            for (int i = 0; i < t; i++) {
                System.arraycopy(x.toArray(), perm[i] * d, px, i * d, d);
                pmask[i] = c.paddingMask() == null ? 1 : c.paddingMask().get(perm[i]);
            }
            ForwardOptions po = ForwardOptions.inference();
            if (c.paddingMask() != null) {
                po = po.withPaddingMask(Tensor.of(pmask, t));
            }
            try (MoeLayer layer = b.createLayer(c.config(), c.weights()); MoeForward f = layer.forward(x, c.options());
                 MoeForward pf = layer.forward(Tensor.of(px, t, d), po)) {
                float[] y = f.output().toArray();
                double[] want = new double[t * d];
                for (int i = 0; i < t; i++) {
                    for (int col = 0; col < d; col++) {
                        want[i * d + col] = y[perm[i] * d + col];
                    }
                }
                Tolerances.Sizes s = o.sizes();
                Compare.floats("permuted output [T, d] vs the output's rows permuted " + Arrays.toString(perm), want, pf.output(),
                        twice(tolerances().output(s)), c);
                MoeLosses l1 = f.losses();
                MoeLosses l2 = pf.losses();
                Compare.scalar("losses.aux after permuting", l1.aux(), l2.aux(), twice(tolerances().aux(s)), 1, c);
                Compare.scalar("losses.z after permuting", l1.z(), l2.z(), twice(tolerances().z(s)), 1, c);
                Compare.scalar("losses.importance after permuting", l1.importance(), l2.importance(), twice(tolerances().importance(s)), 1, c);
                Compare.scalar("losses.load after permuting", l1.load(), l2.load(), twice(tolerances().load(s)), 1, c);
            }
        });
    }

    /**
     * Nothing dropped, inference: running the first a tokens and the rest as two calls gives the
     * rows of the whole call, within twice {@link Tolerances#output}. 80 tries.
     */
    @Property(tries = 80)
    default void droplessOutputIsBatchSplitInvariant(@ForAll @From(supplier = MoeCases.DroplessInference.class) MoeCase c,
                                                     @ForAll @IntRange(min = 1, max = 7) int splitAt) throws Exception {
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            Oracle o = Oracle.of(c);
            int t = c.tokens();
            int d = c.config().modelDim();
            int a = Math.min(splitAt, t - 1);
            float[] x = c.input().toArray();
            Tensor mask = c.paddingMask();
            try (MoeLayer layer = b.createLayer(c.config(), c.weights()); MoeForward whole = layer.forward(c.input(), c.options());
                 MoeForward head = layer.forward(Tensor.of(Arrays.copyOfRange(x, 0, a * d), a, d), part(mask, 0, a));
                 MoeForward tail = layer.forward(Tensor.of(Arrays.copyOfRange(x, a * d, t * d), t - a, d), part(mask, a, t))) {
                double[] want = whole.output().toDoubleArray();
                float[] got = new float[t * d];
                System.arraycopy(head.output().toArray(), 0, got, 0, a * d);
                System.arraycopy(tail.output().toArray(), 0, got, a * d, (t - a) * d);
                Compare.floats("output of tokens [0, " + a + ") and [" + a + ", " + t + ") run separately", want, Tensor.of(got, t, d),
                        twice(tolerances().output(o.sizes())), c);
            }
        });
    }

    /**
     * The kept set for C is a subset of the kept set for C + 1 (SPEC §12), on the same selection.
     * 100 tries.
     */
    @Property(tries = 100)
    default void keptSetGrowsWithCapacity(@ForAll @From(supplier = MoeCases.FixedCapacity.class) MoeCase c) throws Exception {
        int cap = ((Capacity.Fixed) c.config().capacity()).perExpert();
        MoeCase more = c.withCapacity(Capacity.fixed(cap + 1));
        if (Suite.unsupported(this, more.config(), Direction.FORWARD)) {
            return;
        }
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            try (Calls small = Calls.forward(b, c); Calls large = Calls.forward(b, more)) {
                Compare.exactly("selection with C = " + cap + " vs C = " + (cap + 1), small.routing.experts2d(), large.routing.experts2d(),
                        new int[] {c.tokens(), c.config().choicesPerToken()}, c);
                for (int i = 0; i < c.tokens(); i++) {
                    for (int j = 0; j < c.config().choicesPerToken(); j++) {
                        if (small.routing.isKept(i, j) && !large.routing.isKept(i, j)) {
                            throw Compare.failure("(token " + i + ", choice " + j + ") is kept with C = " + cap + " but dropped with C = "
                                    + (cap + 1), c);
                        }
                    }
                }
            }
        });
    }

    /**
     * All logits exactly 0 (router weight zero, no bias): \( L_z = (\ln E)^2 \), and the
     * token-choice load-balancing loss is \( E \sum_i f_i / E = \sum_i f_i \): 1 for TOP1 and
     * TOPK_NORMALIZED, k for TOPK_COUNT (SPEC §12). 100 tries.
     */
    @Property(tries = 100)
    default void zeroLogitsGiveTheClosedFormLosses(@ForAll @From(supplier = MoeCases.ZeroLogits.class) MoeCase c) throws Exception {
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            Oracle o = Oracle.of(c);
            try (Calls call = Calls.forward(b, c)) {
                MoeLosses l = call.forward.losses();
                Tolerances.Sizes s = o.sizes();
                double lnE = Math.log(c.config().experts());
                Compare.scalar("losses.z with all logits 0, (ln E)^2", lnE * lnE, l.z(), tolerances().z(s), 1, c);
                if (c.config().router() instanceof TokenChoiceRouterConfig t) {
                    double want = c.config().losses().auxNormalization() == AuxNormalization.TOPK_COUNT ? t.k() : 1;
                    Compare.scalar("losses.aux with all logits 0 (" + c.config().losses().auxNormalization() + ")", want, l.aux(),
                            tolerances().aux(s), 1, c);
                }
            }
        });
    }

    /**
     * Every loss is in its range: \( 0 \le L_{aux} \le E \) (k E for TOPK_COUNT), \( L_z \ge 0 \),
     * \( cv^2 \ge 0 \); and the total is the weighted sum of the reported losses. 200 tries.
     */
    @Property(tries = 200)
    default void lossesAreInTheirRangesAndTheTotalIsTheirWeightedSum(@ForAll @From(supplier = MoeCases.All.class) MoeCase c) throws Exception {
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            Oracle o = Oracle.of(c);
            try (Calls call = Calls.forward(b, c)) {
                MoeLosses l = call.forward.losses();
                MoeConfig config = c.config();
                Tolerances.Sizes s = o.sizes();
                double auxMax = config.experts() * (config.losses().auxNormalization() == AuxNormalization.TOPK_COUNT
                        ? Math.max(1, config.topK()) : 1);
                double auxTol = tolerances().aux(s).allowed(auxMax, 1);
                if (!(l.aux() >= -auxTol && l.aux() <= auxMax + auxTol) || !(l.z() >= 0) || !(l.importance() >= 0) || !(l.load() >= 0)) {
                    throw Compare.failure("losses out of range: " + l + " (0 <= aux <= " + auxMax + ", z >= 0, cv^2 >= 0)", c);
                }
                MoeLosses weighted = MoeLosses.weighted(l.aux(), l.z(), l.importance(), l.load(), config.losses());
                Compare.scalar("losses.total vs the weighted sum of the reported losses", weighted.total(), l.total(),
                        tolerances().total(s, config.losses(), l), 1, c);
            }
        });
    }

    /** With C = T/G (as many as a group can send one expert) nothing is dropped but GShard's RANDOM policy's picks. 100 tries. */
    @Property(tries = 100)
    default void nothingIsDroppedWhenCapacityIsTheGroupSize(@ForAll @From(supplier = MoeCases.All.class) MoeCase generated) throws Exception {
        if (generated.config().router() instanceof io.github.moe4j.api.ExpertChoiceRouterConfig) {
            generated = generated.withConfig(generated.config().toBuilder().router(TokenChoiceRouterConfig.topK(1)).build());
        }
        MoeCase c = generated.withCapacity(Capacity.fixed(generated.tokensPerGroup()));
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            boolean random = c.config().router() instanceof TokenChoiceRouterConfig t
                    && t.secondExpertPolicy().kind() == io.github.moe4j.api.SecondExpertPolicy.Kind.RANDOM
                    && c.mode() == io.github.moe4j.api.Mode.TRAINING;
            try (Calls call = Calls.forward(b, c)) {
                Routing r = call.routing;
                for (int i = 0; i < r.tokens(); i++) {
                    for (int j = 0; j < r.choicesPerToken(); j++) {
                        if (r.expert(i, j) >= 0 && !r.isKept(i, j) && !(random && j == 1)) {
                            throw Compare.failure("(token " + i + ", choice " + j + ") was dropped with C = T/G = " + c.tokensPerGroup(), c);
                        }
                    }
                }
            }
        });
    }

    private static Tolerance twice(Tolerance t) {
        return new Tolerance(2 * t.rel(), 2 * t.abs(), "twice (" + t.reason() + "): both sides carry the error");
    }

    private static ForwardOptions part(Tensor mask, int from, int to) {
        ForwardOptions o = ForwardOptions.inference();
        if (mask == null) {
            return o;
        }
        return o.withPaddingMask(Tensor.of(Arrays.copyOfRange(mask.toArray(), from, to), to - from));
    }

    private static int[] permutation(int n, long seed) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        java.util.SplittableRandom rng = new java.util.SplittableRandom(seed);
        for (int i = n - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int tmp = p[i];
            p[i] = p[j];
            p[j] = tmp;
        }
        return p;
    }

    /** \( \sum_e \operatorname{softmax}(x W_r + b_r)_e f_e(x) \) in double, from the case's float32 weights. */
    private static double[] denseMixture(MoeCase c) {
        MoeConfig config = c.config();
        ReferenceWeights w = ReferenceWeights.of(config, c.weights());
        int t = c.tokens();
        int d = config.modelDim();
        int e = config.experts();
        double[] x = c.input().toDoubleArray();
        double[] y = new double[t * d];
        for (int i = 0; i < t; i++) {
            double[] z = new double[e];
            double max = Double.NEGATIVE_INFINITY;
            for (int x2 = 0; x2 < e; x2++) {
                double s = w.routerBias() == null ? 0 : w.routerBias()[x2];
                for (int j = 0; j < d; j++) {
                    s += x[i * d + j] * w.router()[j * e + x2];
                }
                z[x2] = s;
                max = Math.max(max, s);
            }
            double sum = 0;
            for (int x2 = 0; x2 < e; x2++) {
                z[x2] = Math.exp(z[x2] - max);
                sum += z[x2];
            }
            for (int x2 = 0; x2 < e; x2++) {
                double[] f = ExpertNetwork.forward(w, config.activation(), x2, x, i * d).output();
                for (int col = 0; col < d; col++) {
                    y[i * d + col] += z[x2] / sum * f[col];
                }
            }
        }
        return y;
    }
}

package io.github.moe4j.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.github.moe4j.api.AuxNormalization;
import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.ExpertChoiceRouterConfig;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.LossWeights;
import io.github.moe4j.api.Mode;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeLosses;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.Priority;
import io.github.moe4j.api.RouterNoise;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The worked example of the specification (T = E = 4, k = 2, α = β = 1, no noise), number for
 * number, through the reference's stage API.
 *
 * <p>Set-up: d = 4 and x = I₄ (four tokens, token t = the t-th unit vector), so with the router
 * weight W_r = z (as [d, E]) the logits are exactly \( z = x W_r \) (each is 1·z plus zeros). The
 * expected values are the published 7-decimal numbers, so they are compared to 5e-8, half a unit in
 * their last place.
 */
class WorkedExampleTest {
    /** The published numbers have 7 decimals: half a unit of the last place. */
    private static final double SEVEN_DECIMALS = 5e-8;

    private static final int T = 4;
    private static final int E = 4;
    private static final double[][] Z = {
        {2.0, 1.0, 0.0, -1.0},
        {0.5, 2.5, 0.0, 0.1},
        {1.0, 1.0, 3.0, 0.0},
        {3.0, 0.2, 0.1, 1.0},
    };
    private static final double[] X = identity(T);

    private static double[] identity(int n) {
        double[] x = new double[n * n];
        for (int i = 0; i < n; i++) {
            x[i * n + i] = 1;
        }
        return x;
    }

    private static double[] flat(double[][] m) {
        List<Double> v = new ArrayList<>();
        for (double[] row : m) {
            for (double a : row) {
                v.add(a);
            }
        }
        return v.stream().mapToDouble(Double::doubleValue).toArray();
    }

    /** A layer whose router weight is z; the experts (h = 1, ReLU, zero weights) play no part. */
    private static ReferenceLayer layer(MoeConfig.Builder builder) {
        MoeConfig config = builder.modelDim(E).hiddenDim(1).experts(E).build();
        double[] noiseRouter = config.router() instanceof NoisyTopKRouterConfig ? new double[E * E] : null;
        return new ReferenceLayer(config, new ReferenceWeights(E, 1, E, flat(Z), null, noiseRouter,
                new double[E * E], null, new double[E * E], null, null));
    }

    private static MoeConfig.Builder top2(Capacity capacity, Priority priority, AuxNormalization normalization) {
        return MoeConfig.builder().router(TokenChoiceRouterConfig.topK(2)).capacity(capacity).priority(priority)
                .losses(LossWeights.of().aux(1, normalization).z(1));
    }

    private static void assertClose(double[] want, double[] got, String what) {
        assertEquals(want.length, got.length, what + " length");
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got[i], SEVEN_DECIMALS, what + "[" + i + "]");
        }
    }

    /** The stage API reproduces z exactly: x = I₄ makes z = W_r. */
    @Test
    void logitsAreTheRouterWeightForUnitInputs() {
        ReferenceLayer layer = layer(top2(Capacity.dropless(), Priority.RANK_MAJOR, AuxNormalization.TOP1));
        RouterOutput r = layer.router(X, T, ForwardOptions.inference());
        assertArrayEquals(flat(Z), r.logits(), "logits are exactly 1·z + 0");
        assertArrayEquals(flat(Z), r.keys(), "token choice selects on z");
    }

    /** S = [[0,1],[1,0],[2,0],[0,3]]; row 2's tie between experts 0 and 1 goes to expert 0. */
    @Test
    void selectionBreaksTheRowTwoTieTowardExpertZero() {
        ReferenceLayer layer = layer(top2(Capacity.dropless(), Priority.RANK_MAJOR, AuxNormalization.TOP1));
        RouterOutput r = layer.router(X, T, ForwardOptions.inference());
        RoutingPlan plan = layer.route(r, ForwardOptions.inference());
        assertArrayEquals(new int[] {0, 1, 1, 0, 2, 0, 0, 3}, plan.selected());
    }

    /** RENORMALIZE gates, before capacity and (dropless) as combine weights. */
    @Test
    void renormalizedGatesMatchTheExample() {
        ReferenceLayer layer = layer(top2(Capacity.dropless(), Priority.RANK_MAJOR, AuxNormalization.TOP1));
        RouterOutput r = layer.router(X, T, ForwardOptions.inference());
        RoutingPlan plan = layer.route(r, ForwardOptions.inference());
        double[] want = {0.7310586, 0.2689414, 0.8807971, 0.1192029, 0.8807971, 0.1192029, 0.8807971, 0.1192029};
        assertClose(want, plan.gateBeforeCapacity(), "gate before capacity");
        assertClose(want, plan.gate(), "gate (dropless)");
    }

    /** P = mean_t p_t = [0.4122787, 0.2881055, 0.2377961, 0.0618198]. */
    @Test
    void meanProbabilityMatchesTheExample() {
        ReferenceLayer layer = layer(top2(Capacity.dropless(), Priority.RANK_MAJOR, AuxNormalization.TOP1));
        RouterOutput r = layer.router(X, T, ForwardOptions.inference());
        assertClose(new double[] {0.4122787, 0.2881055, 0.2377961, 0.0618198},
                LoadBalancingLoss.meanProbability(r.probs(), E, new int[] {0, 1, 2, 3}), "P");
    }

    /** L_aux under each f convention, and L_z = 8.6898800 (α = β = 1, so the total is their sum). */
    @ParameterizedTest
    @CsvSource({"TOP1, 1.3504589", "TOPK_NORMALIZED, 1.2624707", "TOPK_COUNT, 2.5249415"})
    void lossesMatchTheExample(AuxNormalization normalization, double aux) {
        ReferenceLayer layer = layer(top2(Capacity.dropless(), Priority.RANK_MAJOR, normalization));
        ForwardOptions options = ForwardOptions.inference();
        RouterOutput r = layer.router(X, T, options);
        MoeLosses losses = layer.losses(r, layer.route(r, options), options, null);
        assertEquals(aux, losses.aux(), SEVEN_DECIMALS, "L_aux " + normalization);
        assertEquals(8.6898800, losses.z(), SEVEN_DECIMALS, "L_z");
        assertEquals(aux + 8.6898800, losses.total(), 2 * SEVEN_DECIMALS, "total with α = β = 1");
    }

    /** The kept (token, rank) → (expert, slot) of a plan, as "t,r->e,s" strings in (token, rank) order. */
    private static List<String> kept(RoutingPlan plan) {
        List<String> kept = new ArrayList<>();
        for (int t = 0; t < plan.tokens(); t++) {
            for (int j = 0; j < plan.choices(); j++) {
                if (plan.isKept(t, j)) {
                    kept.add(t + "," + j + "->" + plan.selected()[t * plan.choices() + j] + "," + plan.slot()[t * plan.choices() + j]);
                }
            }
        }
        return kept;
    }

    private static RoutingPlan plan(Capacity capacity, Priority priority) {
        ReferenceLayer layer = layer(top2(capacity, priority, AuxNormalization.TOP1));
        RouterOutput r = layer.router(X, T, ForwardOptions.inference());
        return layer.route(r, ForwardOptions.inference());
    }

    /** C = 1, RANK_MAJOR keeps (0,0)→(0,0) (1,0)→(1,0) (2,0)→(2,0) (3,1)→(3,0). */
    @Test
    void rankMajorWithCapacityOneKeepsTheExampleSlots() {
        assertEquals(List.of("0,0->0,0", "1,0->1,0", "2,0->2,0", "3,1->3,0"), kept(plan(Capacity.fixed(1), Priority.RANK_MAJOR)));
    }

    /** C = 1, TOKEN_MAJOR keeps (0,0)→(0,0) (0,1)→(1,0) (2,0)→(2,0) (3,1)→(3,0). */
    @Test
    void tokenMajorWithCapacityOneKeepsTheExampleSlots() {
        assertEquals(List.of("0,0->0,0", "0,1->1,0", "2,0->2,0", "3,1->3,0"), kept(plan(Capacity.fixed(1), Priority.TOKEN_MAJOR)));
    }

    /** C = 1, BATCH_PRIORITIZED keeps (1,0)→(1,0) (2,0)→(2,0) (3,0)→(0,0) (3,1)→(3,0), so token 0 is fully dropped. */
    @Test
    void batchPrioritizedWithCapacityOneDropsTokenZero() {
        assertEquals(List.of("1,0->1,0", "2,0->2,0", "3,0->0,0", "3,1->3,0"), kept(plan(Capacity.fixed(1), Priority.BATCH_PRIORITIZED)));
    }

    /** C = 2: RANK_MAJOR drops (1,1) and (2,1); TOKEN_MAJOR drops (2,1) and (3,0). */
    @Test
    void capacityTwoDropsTheExampleAssignments() {
        RoutingPlan rank = plan(Capacity.fixed(2), Priority.RANK_MAJOR);
        RoutingPlan token = plan(Capacity.fixed(2), Priority.TOKEN_MAJOR);
        List<String> rankDropped = new ArrayList<>();
        List<String> tokenDropped = new ArrayList<>();
        for (int t = 0; t < T; t++) {
            for (int j = 0; j < 2; j++) {
                if (!rank.isKept(t, j)) {
                    rankDropped.add(t + "," + j);
                }
                if (!token.isKept(t, j)) {
                    tokenDropped.add(t + "," + j);
                }
            }
        }
        assertEquals(List.of("1,1", "2,1"), rankDropped);
        assertEquals(List.of("2,1", "3,0"), tokenDropped);
    }

    /** Expert choice on p: C = 1 gives e0←t3, e1←t1, e2←t2, e3←t3; C = 2 adds t0, t0, t0, t1. */
    @ParameterizedTest
    @CsvSource({"1, '3;1;2;3'", "2, '3,0;1,0;2,0;3,1'"})
    void expertChoiceTakesTheExampleTokens(int capacity, String want) {
        ReferenceLayer layer = layer(MoeConfig.builder().router(new ExpertChoiceRouterConfig()).capacity(Capacity.fixed(capacity)));
        RouterOutput r = layer.router(X, T, ForwardOptions.inference());
        RoutingPlan plan = layer.route(r, ForwardOptions.inference());
        List<String> perExpert = new ArrayList<>();
        for (int e = 0; e < E; e++) {
            String[] bySlot = new String[capacity];
            for (int t = 0; t < T; t++) {
                if (plan.selected()[t * E + e] == e) {
                    bySlot[plan.slot()[t * E + e]] = Integer.toString(t);
                    assertEquals(r.probs()[t * E + e], plan.gate()[t * E + e], 0.0, "expert-choice gate is s");
                }
            }
            perExpert.add(String.join(",", bySlot));
        }
        assertEquals(want, String.join(";", perExpert));
    }

    /** H = clean + ε σ for clean = [2, 1, 0, −1], σ = 0.5, ε = [0.1, −0.2, 0.3, 0]. */
    private static final double[] CLEAN = {2, 1, 0, -1};
    private static final double[] EPSILON = {0.1, -0.2, 0.3, 0};
    private static final double[] H = {2.05, 0.90, 0.15, -1.00};
    private static final double[] PROB_IN_TOP_K = {0.9998922, 0.9554345, 0.0359303, 0.0000723};
    private static final double[] NOISY_GATES = {0.7595109, 0.2404891};

    /** Noisy top-k, class by class: H, the smooth load P(x, ·) and the gates of the two selected experts. */
    @Test
    void noisyTopKFunctionsMatchTheExample() {
        double[] sigma = {0.5, 0.5, 0.5, 0.5};
        double[] h = new double[E];
        for (int i = 0; i < E; i++) {
            h[i] = CLEAN[i] + EPSILON[i] * sigma[i];
        }
        assertClose(H, h, "H");
        int[] order = TopK.ofRow(h, 0, E, 3);
        assertArrayEquals(new int[] {0, 1, 2}, order, "top-(k+1) of H");
        assertClose(PROB_IN_TOP_K, NoisyTopKRouter.probInTopK(CLEAN, h, sigma, 0, E, order, 2), "P(x, ·)");
        assertClose(NOISY_GATES, Softmax.overSubset(h, 0, new int[] {0, 1}), "gates of e0, e1");
    }

    /** Noisy top-k through the layer gives the example's H, P(x, ·) and gates. */
    @Test
    void noisyTopKLayerMatchesTheExample() {
        // W_noise = −1000 makes softplus(x W_noise) = log1p(e^−1000) = 0 exactly, so σ = noiseEpsilon = 0.5;
        // ε is supplied, rounded to float, which moves H by < 1e-8.
        MoeConfig config = MoeConfig.builder().modelDim(E).hiddenDim(1).experts(E)
                .router(new NoisyTopKRouterConfig(2, NoisyTopKRouterConfig.Noise.LEARNED, 0.5)).build();
        double[] noiseRouter = new double[E * E];
        java.util.Arrays.fill(noiseRouter, -1000);
        ReferenceLayer layer = new ReferenceLayer(config, new ReferenceWeights(E, 1, E, flat(Z), null, noiseRouter,
                new double[E * E], null, new double[E * E], null, null));
        float[] eps = new float[T * E];
        for (int i = 0; i < E; i++) {
            eps[i] = (float) EPSILON[i];
        }
        ForwardOptions options = new ForwardOptions(Mode.TRAINING, 1, 0, 1, null, null)
                .withNoise(new RouterNoise(null, Tensor.of(eps, T, E), null));
        RouterOutput r = layer.router(X, T, options);
        for (int i = 0; i < E; i++) {
            assertEquals(0.5, r.noiseStd()[i], 0.0, "σ[0," + i + "] is exactly 0.5");
        }
        assertClose(H, java.util.Arrays.copyOf(r.keys(), E), "H of token 0");
        assertClose(PROB_IN_TOP_K, java.util.Arrays.copyOf(r.probInTopK(), E), "P(x, ·) of token 0");
        RoutingPlan plan = layer.route(r, options);
        assertArrayEquals(new int[] {0, 1}, java.util.Arrays.copyOf(plan.selected(), 2), "S of token 0");
        assertClose(NOISY_GATES, java.util.Arrays.copyOf(plan.gate(), 2), "gates of token 0");
    }
}

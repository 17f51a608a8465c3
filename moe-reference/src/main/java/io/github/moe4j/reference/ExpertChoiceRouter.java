package io.github.moe4j.reference;

import java.util.List;

/**
 * Expert-choice selection (SPEC §7): in each group, expert e takes the C tokens with the largest
 * \( s_{t,e} = \operatorname{softmax}(z_t)_e \), ties to the lower token index; slot c holds the token
 * with the (c+1)-th largest score. Every expert receives exactly C tokens (fewer only if the group
 * has fewer than C eligible tokens).
 *
 * <pre>
 * Zhou, Y. et al. "Mixture-of-Experts with Expert Choice Routing." NeurIPS 2022.
 * arXiv:2202.09368, Section 3.1, eq. (1).
 * </pre>
 * Mirrors google/flaxformer {@code flaxformer/architectures/moe/routing.py}
 * {@code ExpertsChooseMaskedRouter._compute_routing_instructions} ({@code jax.lax.top_k} over tokens).
 */
public final class ExpertChoiceRouter {
    private ExpertChoiceRouter() {}

    /**
     * The tokens expert e takes, best first.
     *
     * @param s        probabilities [T, E]
     * @param eligible the group's tokens that may be taken, in increasing order
     * @param capacity C
     */
    public static int[] tokensFor(double[] s, int experts, int e, List<Integer> eligible, int capacity) {
        double[] keys = new double[eligible.size()];
        for (int i = 0; i < keys.length; i++) {
            keys[i] = s[eligible.get(i) * experts + e];
        }
        int[] best = TopK.ofRow(keys, 0, keys.length, Math.min(capacity, keys.length));
        int[] tokens = new int[best.length];
        for (int c = 0; c < best.length; c++) {
            tokens[c] = eligible.get(best[c]);
        }
        return tokens;
    }
}

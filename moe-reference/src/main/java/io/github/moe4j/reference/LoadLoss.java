package io.github.moe4j.reference;

/**
 * The load loss of noisy top-k gating (SPEC §6), unweighted: \( L_{load} = \mathrm{cv}^2(\mathrm{Load}) \),
 * with \( \mathrm{Load}_i = \sum_t P(t, i) \) (the smooth estimator of
 * {@link NoisyTopKRouter#probInTopK}) in training with learned noise and k &lt; E, and
 * \( \mathrm{Load}_i = \sum_t 1[i \in S_t] \) otherwise.
 *
 * <pre>
 * Shazeer, N. et al. "Outrageously Large Neural Networks." ICLR 2017. arXiv:1701.06538,
 * Appendix A, eq. (8)–(11).
 * </pre>
 * Mirrors tensor2tensor {@code noisy_top_k_gating} ({@code load}) and {@code _gates_to_load}.
 */
public final class LoadLoss {
    private LoadLoss() {}

    /**
     * The hard load: how many of the group's real tokens selected each expert.
     *
     * @param selected [T, k] experts per token, -1 for none
     */
    public static double[] countLoad(int[] selected, int k, int experts, int[] tokens) {
        double[] load = new double[experts];
        for (int t : tokens) {
            for (int r = 0; r < k; r++) {
                int e = selected[t * k + r];
                if (e >= 0) {
                    load[e] += 1;
                }
            }
        }
        return load;
    }

    /** The smooth load: \( \sum_t P(t, i) \) over the group's real tokens, P as [T, E]. */
    public static double[] smoothLoad(double[] probInTopK, int experts, int[] tokens) {
        double[] load = new double[experts];
        for (int t : tokens) {
            for (int e = 0; e < experts; e++) {
                load[e] += probInTopK[t * experts + e];
            }
        }
        return load;
    }

    /** \( \mathrm{cv}^2(\mathrm{Load}) \). */
    public static double value(double[] load) {
        return CoefficientOfVariation.squared(load);
    }

    /**
     * Backward of {@link #smoothLoad}: adds \( \partial L / \partial \mathrm{Load}_i \) to every real token's
     * \( \partial L / \partial P(t, i) \). (The hard count of {@link #countLoad} has no gradient.)
     *
     * @param dLoad       \( \partial L / \partial \mathrm{Load} \), [E]
     * @param tokens      the group's real tokens
     * @param dProbInTopK accumulates \( \partial L / \partial P \), [T, E]
     */
    public static void smoothLoadBackward(double[] dLoad, int[] tokens, double[] dProbInTopK) {
        int experts = dLoad.length;
        for (int t : tokens) {
            for (int e = 0; e < experts; e++) {
                // forward: load[e] += probInTopK[t * E + e]
                dProbInTopK[t * experts + e] += dLoad[e];
            }
        }
    }
}

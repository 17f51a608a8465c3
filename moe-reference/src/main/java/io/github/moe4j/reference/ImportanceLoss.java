package io.github.moe4j.reference;

/**
 * The importance loss of noisy top-k gating (SPEC §6), unweighted:
 * \( \mathrm{Importance}_i = \sum_t G_{t,i} \) over the group's real tokens (the sparse gates),
 * \( L_{imp} = \mathrm{cv}^2(\mathrm{Importance}) \).
 *
 * <pre>
 * Shazeer, N. et al. "Outrageously Large Neural Networks." ICLR 2017. arXiv:1701.06538, eq. (6)–(7).
 * </pre>
 * Mirrors tensor2tensor {@code local_moe} ({@code importance = tf.reduce_sum(gates, 0)}).
 */
public final class ImportanceLoss {
    private ImportanceLoss() {}

    /**
     * Importance per expert.
     *
     * @param selected [T, k] experts per token, -1 for none
     * @param gates    [T, k] gates before capacity
     * @param tokens   the group's real tokens
     */
    public static double[] importance(int[] selected, double[] gates, int k, int experts, int[] tokens) {
        double[] importance = new double[experts];
        for (int t : tokens) {
            for (int r = 0; r < k; r++) {
                int e = selected[t * k + r];
                if (e >= 0) {
                    importance[e] += gates[t * k + r];
                }
            }
        }
        return importance;
    }

    /** \( \mathrm{cv}^2(\mathrm{Importance}) \). */
    public static double value(double[] importance) {
        return CoefficientOfVariation.squared(importance);
    }

    /**
     * Backward of {@link #importance}: adds \( \partial L / \partial \mathrm{Importance}_{S_{t,r}} \) to the
     * gradient of each real token's gate before capacity.
     *
     * @param selected    [T, k] experts per token, -1 for none
     * @param tokens      the group's real tokens
     * @param dImportance \( \partial L / \partial \mathrm{Importance} \), [E]
     * @param dGates      accumulates \( \partial L / \partial G \), [T, k], of the gates before capacity
     */
    public static void importanceBackward(int[] selected, int k, int[] tokens, double[] dImportance, double[] dGates) {
        for (int t : tokens) {
            for (int r = 0; r < k; r++) {
                // forward: importance[e] += gates[t * k + r]
                int e = selected[t * k + r];
                if (e >= 0) {
                    dGates[t * k + r] += dImportance[e];
                }
            }
        }
    }
}

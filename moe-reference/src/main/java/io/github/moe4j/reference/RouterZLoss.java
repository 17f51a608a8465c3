package io.github.moe4j.reference;

/**
 * The router z-loss of one group (SPEC §5), unweighted:
 * \( L_z = \operatorname{mean}_t \operatorname{lse}(z_t)^2 \) over the group's real tokens, on the
 * logits used for selection before logit noise.
 *
 * <p>Gradient: \( \partial L_z / \partial z_{t,j} = (2/T) \operatorname{lse}(z_t)\, p_{t,j} \).
 *
 * <pre>
 * Zoph, B. et al. "ST-MoE: Designing Stable and Transferable Sparse Expert Models."
 * arXiv:2202.08906, 2022, Section 3.1, eq. (5).
 * </pre>
 * Mirrors flaxformer {@code _router_z_loss} and Hugging Face {@code router_z_loss_func}.
 */
public final class RouterZLoss {
    private RouterZLoss() {}

    /** \( \operatorname{mean}_{t \in tokens} \operatorname{lse}(z_t)^2 \); 0 for no tokens. */
    public static double value(double[] z, int experts, int[] tokens) {
        if (tokens.length == 0) {
            return 0;
        }
        double sum = 0;
        for (int t : tokens) {
            double lse = Softmax.logSumExp(z, t * experts, experts);
            sum += lse * lse;
        }
        return sum / tokens.length;
    }

    /**
     * Backward of {@link #value}: adds \( \partial (c L_z) / \partial z_{t,j} = c\,(2/T)\, \operatorname{lse}(z_t)\, p_{t,j} \)
     * for the group's real tokens (T = their number), the closed form of SPEC §5.
     *
     * @param z       logits [T, E]
     * @param p       \( \operatorname{softmax}(z) \), [T, E]
     * @param tokens  the group's real tokens
     * @param dLoss   c, the upstream gradient of this group's \( L_z \)
     * @param dLogits accumulates \( \partial L / \partial z \), [T, E]
     */
    public static void backward(double[] z, double[] p, int experts, int[] tokens, double dLoss, double[] dLogits) {
        if (tokens.length == 0) {
            return;
        }
        for (int t : tokens) {
            // forward: sum += lse * lse, then sum / tokens.length
            double lse = Softmax.logSumExp(z, t * experts, experts);
            Softmax.logSumExpBackward(p, t * experts, experts, dLoss * 2 * lse / tokens.length, dLogits);
        }
    }
}

package io.github.moe4j.reference;

import io.github.moe4j.api.AuxNormalization;

/**
 * The Switch load-balancing loss of one group (SPEC §5), unweighted:
 * \( L_{aux} = E \sum_i f_i P_i \), \( P_i = \operatorname{mean}_t p_{t,i} \) (softmax of the logits
 * before logit noise), f from the selection before capacity per {@link AuxNormalization}. Only
 * real (non-padding) tokens count, in numerators and denominators.
 *
 * <p>Gradient, f constant: \( \partial L_{aux} / \partial z_{t,j} = (E/T)\, p_{t,j} (f_j - \sum_i f_i p_{t,i}) \).
 *
 * <pre>
 * Fedus, W., Zoph, B., Shazeer, N. "Switch Transformers." JMLR 2022. arXiv:2101.03961, eq. (4)–(6).
 * </pre>
 * Mirrors Hugging Face {@code load_balancing_loss_func} (Switch and Mixtral), flaxformer
 * {@code _load_balancing_loss}, DeepSpeed {@code top1gating}/{@code top2gating}/{@code topkgating}
 * ({@code l_aux}).
 */
public final class LoadBalancingLoss {
    private LoadBalancingLoss() {}

    /**
     * f per expert for one group.
     *
     * @param selected [T, k] selected experts (best first), -1 for a token that chose none
     * @param tokens   the group's real tokens
     */
    public static double[] dispatchFraction(int[] selected, int k, int experts, int[] tokens, AuxNormalization normalization) {
        double[] f = new double[experts];
        if (tokens.length == 0) {
            return f;
        }
        for (int t : tokens) {
            int ranks = normalization == AuxNormalization.TOP1 ? 1 : k;
            for (int r = 0; r < ranks; r++) {
                int e = selected[t * k + r];
                if (e >= 0) {
                    f[e] += 1;
                }
            }
        }
        double scale = normalization == AuxNormalization.TOPK_NORMALIZED ? 1.0 / (k * tokens.length) : 1.0 / tokens.length;
        for (int e = 0; e < experts; e++) {
            f[e] *= scale;
        }
        return f;
    }

    /** P per expert for one group: the mean probability over its real tokens. */
    public static double[] meanProbability(double[] p, int experts, int[] tokens) {
        double[] mean = new double[experts];
        if (tokens.length == 0) {
            return mean;
        }
        for (int t : tokens) {
            for (int e = 0; e < experts; e++) {
                mean[e] += p[t * experts + e];
            }
        }
        for (int e = 0; e < experts; e++) {
            mean[e] /= tokens.length;
        }
        return mean;
    }

    /** \( E \sum_i f_i P_i \). */
    public static double value(double[] f, double[] meanP) {
        double sum = 0;
        for (int e = 0; e < f.length; e++) {
            sum += f[e] * meanP[e];
        }
        return f.length * sum;
    }

    /**
     * Backward of {@link #value} and {@link #meanProbability}, f constant: adds
     * \( \partial (c L_{aux}) / \partial p_{t,i} = c\, E f_i / T \) for the group's real tokens
     * (T = their number). Through the softmax this is
     * \( \partial L_{aux} / \partial z_{t,j} = (E/T)\, p_{t,j} (f_j - \sum_i f_i p_{t,i}) \).
     *
     * @param f      the dispatch fractions, [E]
     * @param tokens the group's real tokens
     * @param dLoss  c, the upstream gradient of this group's \( L_{aux} \)
     * @param dProbs accumulates \( \partial L / \partial p \), [T, E]
     */
    public static void backward(double[] f, int[] tokens, double dLoss, double[] dProbs) {
        int experts = f.length;
        if (tokens.length == 0) {
            return;
        }
        // forward: value = E * Σ_e f[e] * meanP[e]
        double[] dMeanP = new double[experts];
        for (int e = 0; e < experts; e++) {
            dMeanP[e] = dLoss * experts * f[e];
        }
        // forward: mean[e] += p[t * E + e], then mean[e] /= tokens.length
        for (int t : tokens) {
            for (int e = 0; e < experts; e++) {
                dProbs[t * experts + e] += dMeanP[e] / tokens.length;
            }
        }
    }
}

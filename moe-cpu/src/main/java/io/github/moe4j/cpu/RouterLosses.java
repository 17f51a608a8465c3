package io.github.moe4j.cpu;

import io.github.moe4j.api.AuxNormalization;
import io.github.moe4j.api.LossWeights;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeLosses;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.TokenChoiceRouterConfig;

/**
 * The router's auxiliary losses (SPEC §4a, §5, §6) and their gradients, in double on the logits of
 * {@link CpuRouter}. Each loss is computed per routing group over the group's real (non-padding)
 * tokens, in increasing token order, and averaged over the groups:
 * <ul>
 * <li>load balancing (token choice): \( L_{aux} = E \sum_i f_i P_i \), \( P_i = \operatorname{mean}_t p_{t,i} \),
 *     f from the selection before capacity per {@link AuxNormalization};</li>
 * <li>router z-loss (every router): \( L_z = \operatorname{mean}_t \operatorname{lse}(z_t)^2 \);</li>
 * <li>noisy top-k: \( \mathrm{cv}^2(\mathrm{Importance}) \), \( \mathrm{Importance}_i = \sum_t G_{t,i} \) over the
 *     gates before capacity, and \( \mathrm{cv}^2(\mathrm{Load}) \), Load the smooth \( \sum_t P(t,i) \) where
 *     {@link CpuRouter} computed P (training, learned noise, k &lt; E), else the count of selections.</li>
 * </ul>
 * \( \mathrm{cv}^2 \) is tensor2tensor's {@code cv_squared}: \( n = \mathrm{size} + 10^{-10} \),
 * \( \mu = \sum v / n \), \( \mathrm{var} = \sum (v - \mu)^2 / n \), \( \mathrm{cv}^2 = \mathrm{var} / (\mu^2 + 10^{-10}) \).
 */
final class RouterLosses {
    private static final double CV_EPSILON = 1e-10;

    private RouterLosses() {}

    /**
     * The losses of one call, and what their backward needs.
     *
     * @param losses     unweighted, averaged over groups, and their weighted total
     * @param importance [G, E] Importance per group (noisy top-k), else null
     * @param load       [G, E] Load per group (noisy top-k), else null
     */
    record Values(MoeLosses losses, double[] importance, double[] load) {}

    /**
     * Every loss of one call (SPEC §5, §6).
     *
     * @param lse        [T] \( \operatorname{lse}(z_t) \)
     * @param probs      [T, E] \( p = \operatorname{softmax}(z) \)
     * @param probInTopK [T, E] the smooth load's P(t, i), or null where Load is a count
     * @param real       [T] whether each token is real
     */
    static Values forward(MoeConfig config, CpuRouting plan, double[] lse, double[] probs, double[] probInTopK, boolean[] real) {
        int groups = plan.groups();
        int e = plan.experts();
        boolean noisy = config.router() instanceof NoisyTopKRouterConfig;
        double aux = 0;
        double z = 0;
        double importanceLoss = 0;
        double loadLoss = 0;
        double[] importance = noisy ? new double[groups * e] : null;
        double[] load = noisy ? new double[groups * e] : null;
        for (int g = 0; g < groups; g++) {
            int[] tokens = realTokens(real, g, plan.tokens() / groups);
            double squares = 0;
            for (int t : tokens) {
                squares += lse[t] * lse[t];
            }
            z += tokens.length == 0 ? 0 : squares / tokens.length;
            if (config.router() instanceof TokenChoiceRouterConfig) {
                double[] f = dispatchFraction(plan, tokens, config.losses().auxNormalization());
                double[] meanP = new double[e];
                for (int t : tokens) {
                    for (int i = 0; i < e; i++) {
                        meanP[i] += probs[t * e + i];
                    }
                }
                double fp = 0;
                for (int i = 0; i < e; i++) {
                    fp += f[i] * (tokens.length == 0 ? 0 : meanP[i] / tokens.length);
                }
                aux += e * fp;
            }
            if (noisy) {
                int k = plan.choices();
                for (int t : tokens) {
                    for (int j = 0; j < k; j++) {
                        int ex = plan.selected()[t * k + j];
                        if (ex >= 0) {
                            importance[g * e + ex] += plan.gateBeforeCapacity()[t * k + j];
                            if (probInTopK == null) {
                                load[g * e + ex] += 1;
                            }
                        }
                    }
                    if (probInTopK != null) {
                        for (int i = 0; i < e; i++) {
                            load[g * e + i] += probInTopK[t * e + i];
                        }
                    }
                }
                importanceLoss += cvSquared(importance, g * e, e);
                loadLoss += cvSquared(load, g * e, e);
            }
        }
        MoeLosses losses = MoeLosses.weighted(aux / groups, z / groups, importanceLoss / groups, loadLoss / groups, config.losses());
        return new Values(losses, importance, load);
    }

    /**
     * Adds the gradients of the weighted losses (the coefficients of {@link MoeConfig#losses()}) to
     * the router's accumulators. A loss with coefficient 0 adds nothing.
     *
     * @param values       what {@link #forward} returned
     * @param dLogits      accumulates \( \partial L / \partial z \), [T, E] (z-loss)
     * @param dProbs       accumulates \( \partial L / \partial p \), [T, E] (load balancing)
     * @param dGateBefore  accumulates \( \partial L / \partial G \) of the gates before capacity, [T, k] (importance), or null
     * @param dProbInTopK  accumulates \( \partial L / \partial P \), [T, E] (smooth load), or null
     */
    static void backward(MoeConfig config, CpuRouting plan, double[] lse, double[] probs, boolean[] real, Values values,
                         double[] dLogits, double[] dProbs, double[] dGateBefore, double[] dProbInTopK) {
        int groups = plan.groups();
        int e = plan.experts();
        LossWeights c = config.losses();
        boolean noisy = config.router() instanceof NoisyTopKRouterConfig;
        for (int g = 0; g < groups; g++) {
            int[] tokens = realTokens(real, g, plan.tokens() / groups);
            int n = tokens.length;
            if (c.z() != 0) {
                // forward: z += Σ_t lse_t² / n, averaged over groups; ∂lse_t/∂z_{t,i} = p_{t,i}
                for (int t : tokens) {
                    double dLse = c.z() / groups * 2 * lse[t] / n;
                    for (int i = 0; i < e; i++) {
                        dLogits[t * e + i] += dLse * probs[t * e + i];
                    }
                }
            }
            if (c.aux() != 0 && config.router() instanceof TokenChoiceRouterConfig) {
                // forward: aux += E Σ_i f_i meanP_i, meanP_i = Σ_t p_{t,i} / n, f constant
                double[] f = dispatchFraction(plan, tokens, c.auxNormalization());
                for (int t : tokens) {
                    for (int i = 0; i < e; i++) {
                        dProbs[t * e + i] += c.aux() / groups * e * f[i] / n;
                    }
                }
            }
            int k = plan.choices();
            if (noisy && c.importance() != 0) {
                // forward: importance[ex] += gateBeforeCapacity[t, j] for ex = selected[t, j]
                double[] dImportance = cvSquaredBackward(values.importance(), g * e, e, c.importance() / groups);
                for (int t : tokens) {
                    for (int j = 0; j < k; j++) {
                        int ex = plan.selected()[t * k + j];
                        if (ex >= 0) {
                            dGateBefore[t * k + j] += dImportance[ex];
                        }
                    }
                }
            }
            if (noisy && c.load() != 0 && dProbInTopK != null) {
                // forward: load[i] += probInTopK[t, i] (the count load has no gradient)
                double[] dLoad = cvSquaredBackward(values.load(), g * e, e, c.load() / groups);
                for (int t : tokens) {
                    for (int i = 0; i < e; i++) {
                        dProbInTopK[t * e + i] += dLoad[i];
                    }
                }
            }
        }
    }

    /** The real tokens of group g, in increasing order. */
    private static int[] realTokens(boolean[] real, int g, int groupSize) {
        int[] list = new int[groupSize];
        int n = 0;
        for (int t = g * groupSize; t < (g + 1) * groupSize; t++) {
            if (real[t]) {
                list[n++] = t;
            }
        }
        return java.util.Arrays.copyOf(list, n);
    }

    /**
     * f of one group (SPEC §5): per expert, the share of the group's real tokens that selected it
     * (TOP1: at rank 0; TOPK_COUNT: at any rank; TOPK_NORMALIZED: at any rank, divided by k).
     */
    private static double[] dispatchFraction(CpuRouting plan, int[] tokens, AuxNormalization normalization) {
        int k = plan.choices();
        double[] f = new double[plan.experts()];
        if (tokens.length == 0) {
            return f;
        }
        int ranks = normalization == AuxNormalization.TOP1 ? 1 : k;
        for (int t : tokens) {
            for (int j = 0; j < ranks; j++) {
                int ex = plan.selected()[t * k + j];
                if (ex >= 0) {
                    f[ex] += 1;
                }
            }
        }
        double share = 1.0 / (normalization == AuxNormalization.TOPK_NORMALIZED ? k * tokens.length : tokens.length);
        for (int i = 0; i < f.length; i++) {
            f[i] *= share;
        }
        return f;
    }

    /** \( \mathrm{cv}^2 \) of {@code v[from .. from + n)}. */
    private static double cvSquared(double[] v, int from, int n) {
        Moments s = Moments.of(v, from, n);
        return s.var() / (s.mean() * s.mean() + CV_EPSILON);
    }

    /**
     * \( \partial L / \partial v \) for \( L = c\,\mathrm{cv}^2(v) \), v = {@code v[from .. from + n)}. size is not
     * the count, so \( \sum_j (v_j - \mu) \) is kept: \( \partial \mathrm{var} / \partial v_i = \tfrac{2}{size}
     * \big((v_i - \mu) - \tfrac{1}{size} \sum_j (v_j - \mu)\big) \), \( \partial \mu / \partial v_i = 1/size \).
     */
    private static double[] cvSquaredBackward(double[] v, int from, int n, double c) {
        Moments s = Moments.of(v, from, n);
        double denominator = s.mean() * s.mean() + CV_EPSILON;
        double[] dv = new double[n];
        for (int i = 0; i < n; i++) {
            // forward: cv² = var / (μ² + 1e-10)
            double dVar = 2 / s.size() * ((v[from + i] - s.mean()) - s.deviations() / s.size());
            dv[i] = c * (dVar / denominator - s.var() * 2 * s.mean() / s.size() / (denominator * denominator));
        }
        return dv;
    }

    /**
     * What \( \mathrm{cv}^2 \) reads of its vector: size \( = n + 10^{-10} \), \( \mu = \sum v / size \),
     * \( \mathrm{var} = \sum (v - \mu)^2 / size \), and \( \sum (v - \mu) \) for the backward.
     */
    private record Moments(double size, double mean, double var, double deviations) {
        static Moments of(double[] v, int from, int n) {
            double size = n + CV_EPSILON;
            double mean = 0;
            for (int i = from; i < from + n; i++) {
                mean += v[i];
            }
            mean /= size;
            double var = 0;
            double deviations = 0;
            for (int i = from; i < from + n; i++) {
                var += (v[i] - mean) * (v[i] - mean);
                deviations += v[i] - mean;
            }
            return new Moments(size, mean, var / size, deviations);
        }
    }
}

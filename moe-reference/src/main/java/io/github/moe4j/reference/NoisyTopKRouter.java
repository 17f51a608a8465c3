package io.github.moe4j.reference;

import org.apache.commons.numbers.gamma.Erf;

/**
 * Noisy top-k gating (SPEC §6):
 * <p>\( \mathrm{clean} = x W_g, \quad \sigma = \operatorname{softplus}(x W_{noise}) + \epsilon_0,
 * \quad H = \mathrm{clean} + \varepsilon \odot \sigma \)  (training; inference: \( H = \mathrm{clean} \))
 * <p>\( G = \operatorname{softmax}(\operatorname{KeepTopK}(H, k)) \), and the smooth load estimator
 * \( P(t,i) = \Phi((\mathrm{clean}_{t,i} - \mathrm{thr}_{t,i}) / \sigma_{t,i}) \), where thr is the
 * (k+1)-th largest H of the token if i is among its top k (strictly above it), else the k-th.
 *
 * <pre>
 * Shazeer, N. et al. "Outrageously Large Neural Networks: The Sparsely-Gated Mixture-of-Experts
 * Layer." ICLR 2017. arXiv:1701.06538, Section 2.1 (eq. 3–5) and Appendix A (eq. 8–10).
 * </pre>
 * Mirrors tensorflow/tensor2tensor {@code tensor2tensor/utils/expert_utils.py}
 * {@code noisy_top_k_gating}, {@code _prob_in_top_k} and {@code _normal_distribution_cdf}.
 */
public final class NoisyTopKRouter {
    private static final double SQRT2 = Math.sqrt(2);

    private NoisyTopKRouter() {}

    /** \( \operatorname{softplus}(a) = \log(1 + e^a) \), computed without overflow. */
    public static double softplus(double a) {
        return Math.max(a, 0) + Math.log1p(Math.exp(-Math.abs(a)));
    }

    /** \( \sigma = \operatorname{softplus}(a) + \epsilon_0 \). */
    public static double noiseStd(double rawStd, double epsilon) {
        return softplus(rawStd) + epsilon;
    }

    /**
     * t2t's {@code _normal_distribution_cdf(v, σ)} \( = \tfrac12 (1 + \operatorname{erf}(v / (\sqrt2\,\sigma + 10^{-20}))) \),
     * i.e. \( \Phi(v/\sigma) \); erf from Commons Numbers.
     */
    public static double normalCdf(double v, double sigma) {
        return 0.5 * (1 + Erf.value(v / (SQRT2 * sigma + 1e-20)));
    }

    /**
     * The smooth load contributions \( P(t, i) \) of one token, i in [0, E) (t2t {@code _prob_in_top_k}).
     * Needs k &lt; E.
     *
     * @param clean  clean logits row at {@code offset}
     * @param noisy  noisy logits H row at {@code offset}
     * @param sigma  noise std row at {@code offset}
     * @param order  the top-(k+1) of H, best first
     */
    public static double[] probInTopK(double[] clean, double[] noisy, double[] sigma, int offset, int experts, int[] order, int k) {
        double thresholdIfIn = noisy[offset + order[k]];
        double thresholdIfOut = noisy[offset + order[k - 1]];
        double[] prob = new double[experts];
        for (int i = 0; i < experts; i++) {
            boolean isIn = noisy[offset + i] > thresholdIfIn;
            double threshold = isIn ? thresholdIfIn : thresholdIfOut;
            prob[i] = normalCdf(clean[offset + i] - threshold, sigma[offset + i]);
        }
        return prob;
    }
}

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
 *
 * <p>Backward (research §3.5, as TensorFlow differentiates t2t: nothing is stop-gradient'ed):
 * \( \partial P / \partial \mathrm{clean}_i = \phi(u)/\sigma_i \), \( \partial P / \partial \sigma_i = -\phi(u)\, u / \sigma_i \)
 * and \( \partial P / \partial \mathrm{thr} = -\phi(u)/\sigma_i \), \( u = (\mathrm{clean}_i - \mathrm{thr})/\sigma_i \);
 * the threshold is another expert's noisy logit \( H_j = \mathrm{clean}_j + \varepsilon_j \sigma_j \), so its
 * gradient reaches that expert's clean logit and noise std. The index sets and {@code is_in} are constants.
 */
public final class NoisyTopKRouter {
    private static final double SQRT2 = Math.sqrt(2);
    private static final double SQRT_PI = Math.sqrt(Math.PI);

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
     * Backward of {@link #noiseStd}: \( \partial \sigma / \partial a = \operatorname{softplus}'(a) = 1 / (1 + e^{-a}) \),
     * times {@code dSigma}.
     *
     * @param rawStd a, the forward's argument
     * @param dSigma \( \partial L / \partial \sigma \)
     * @return \( \partial L / \partial a \)
     */
    public static double noiseStdBackward(double rawStd, double dSigma) {
        // forward: softplus(rawStd) + epsilon = max(a, 0) + log1p(exp(−|a|)) + ε0
        double sigmoid = rawStd >= 0 ? 1 / (1 + Math.exp(-rawStd)) : Math.exp(rawStd) / (1 + Math.exp(rawStd));
        return dSigma * sigmoid;
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

    /**
     * Backward of {@link #normalCdf} with respect to v: \( \tfrac{1}{\sqrt\pi} e^{-w^2} / s \) with
     * \( s = \sqrt2\,\sigma + 10^{-20} \), \( w = v / s \), i.e. \( \phi(v/\sigma)/\sigma \) up to the \( 10^{-20} \).
     */
    public static double normalCdfDv(double v, double sigma) {
        // forward: 0.5 * (1 + erf(v / (sqrt(2) σ + 1e-20)))
        double s = SQRT2 * sigma + 1e-20;
        double w = v / s;
        return Math.exp(-w * w) / (SQRT_PI * s);
    }

    /**
     * Backward of {@link #normalCdf} with respect to σ: \( -\tfrac{1}{\sqrt\pi} e^{-w^2}\, v \sqrt2 / s^2 \),
     * i.e. \( -\phi(u)\, u / \sigma \) with \( u = v/\sigma \).
     */
    public static double normalCdfDsigma(double v, double sigma) {
        double s = SQRT2 * sigma + 1e-20;
        double w = v / s;
        return -Math.exp(-w * w) / SQRT_PI * v * SQRT2 / (s * s);
    }

    /**
     * Backward of {@link #probInTopK} for one token: given \( \partial L / \partial P(t, \cdot) \), adds to the
     * gradients of the clean logits, the noisy logits H (through the thresholds) and the noise std.
     *
     * @param clean  clean logits row at {@code offset}
     * @param noisy  noisy logits H row at {@code offset}
     * @param sigma  noise std row at {@code offset}
     * @param order  the top-(k+1) of H, best first (as in the forward)
     * @param dProb  \( \partial L / \partial P \), row at {@code offset}
     * @param dClean accumulates \( \partial L / \partial \mathrm{clean} \), row at {@code offset}
     * @param dNoisy accumulates \( \partial L / \partial H \), row at {@code offset}
     * @param dSigma accumulates \( \partial L / \partial \sigma \), row at {@code offset}
     */
    public static void probInTopKBackward(double[] clean, double[] noisy, double[] sigma, int offset, int experts, int[] order,
                                          int k, double[] dProb, double[] dClean, double[] dNoisy, double[] dSigma) {
        double thresholdIfIn = noisy[offset + order[k]];
        for (int i = 0; i < experts; i++) {
            boolean isIn = noisy[offset + i] > thresholdIfIn;
            int thresholdExpert = isIn ? order[k] : order[k - 1];
            // forward: prob[i] = normalCdf(clean[i] − threshold, sigma[i]), threshold = H[thresholdExpert]
            double v = clean[offset + i] - noisy[offset + thresholdExpert];
            double dV = dProb[offset + i] * normalCdfDv(v, sigma[offset + i]);
            dClean[offset + i] += dV;
            dNoisy[offset + thresholdExpert] -= dV;
            dSigma[offset + i] += dProb[offset + i] * normalCdfDsigma(v, sigma[offset + i]);
        }
    }
}

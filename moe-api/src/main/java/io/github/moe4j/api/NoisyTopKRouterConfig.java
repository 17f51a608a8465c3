package io.github.moe4j.api;

/**
 * Noisy top-k gating (SPEC §6):
 * \( H = xW_g + \varepsilon \odot (\operatorname{softplus}(xW_{noise}) + \epsilon_0) \) in training,
 * \( H = xW_g \) in inference; gates are the softmax over the k largest H; the losses are
 * \( w_{imp}\,\mathrm{cv}^2(\mathrm{Importance}) + w_{load}\,\mathrm{cv}^2(\mathrm{Load}) \) with
 * the smooth load estimator.
 *
 * <pre>
 * Shazeer, N., Mirhoseini, A., Maziarz, K., Davis, A., Le, Q., Hinton, G., Dean, J.
 * "Outrageously Large Neural Networks: The Sparsely-Gated Mixture-of-Experts Layer."
 * ICLR 2017. arXiv:1701.06538, Section 2.1 and Appendix A.
 * </pre>
 * Mirrors tensorflow/tensor2tensor {@code tensor2tensor/utils/expert_utils.py}
 * {@code noisy_top_k_gating}.
 *
 * @param k            experts per token, in [1, E]
 * @param noise        whether the noise standard deviation is learned ({@link Noise#LEARNED}, the
 *                     paper) or there is no noise at all ({@link Noise#NONE}, t2t {@code noisy_gating=False})
 * @param noiseEpsilon \( \epsilon_0 \) added to the softplus (t2t {@code noise_epsilon}, default 1e-2)
 */
public record NoisyTopKRouterConfig(int k, Noise noise, double noiseEpsilon) implements RouterConfig {

    /** Whether the router has a learned noise weight. */
    public enum Noise {
        /** \( \sigma = \operatorname{softplus}(xW_{noise}) + \epsilon_0 \); needs {@link MoeWeights#noiseRouter()}. */
        LEARNED,
        /** No noise weight and no noise; Load is a hard count. t2t {@code noisy_gating=False}. */
        NONE
    }

    /** t2t's {@code noise_epsilon} default. */
    public static final double DEFAULT_NOISE_EPSILON = 1e-2;

    public NoisyTopKRouterConfig {
        Checks.requirePositive(k, "router.k");
        Checks.requireNonNull(noise, "router.noise");
        Checks.requireNonNegativeFinite(noiseEpsilon, "router.noiseEpsilon");
    }

    /** Learned noise with t2t's epsilon. */
    public static NoisyTopKRouterConfig of(int k) {
        return new NoisyTopKRouterConfig(k, Noise.LEARNED, DEFAULT_NOISE_EPSILON);
    }

    @Override
    public int choicesPerToken(int experts) {
        return k;
    }

    @Override
    public void validate(int experts) {
        RouterConfig.requireTopKWithin(k, experts);
    }
}

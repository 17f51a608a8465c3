package io.github.moe4j.api;

/**
 * How tokens are assigned to experts. Three families, each a record:
 * {@link TokenChoiceRouterConfig} (each token picks k experts: Switch, GShard, Mixtral, ST-MoE),
 * {@link NoisyTopKRouterConfig} (Shazeer et al. 2017) and {@link ExpertChoiceRouterConfig}
 * (each expert picks C tokens: Zhou et al. 2022).
 */
public sealed interface RouterConfig permits TokenChoiceRouterConfig, NoisyTopKRouterConfig, ExpertChoiceRouterConfig {

    /**
     * How many routing entries each token has in {@link Routing}: k for the token-choice routers,
     * E (one per expert) for expert choice.
     */
    int choicesPerToken(int experts);

    /** Checks this router against the number of experts; throws {@link IllegalArgumentException}. */
    void validate(int experts);

    /** Checks that k experts per token can be chosen from {@code experts}. */
    static void requireTopKWithin(int k, int experts) {
        if (k > experts) {
            throw new IllegalArgumentException("router.k must be in [1, experts=" + experts + "], got " + k);
        }
    }
}

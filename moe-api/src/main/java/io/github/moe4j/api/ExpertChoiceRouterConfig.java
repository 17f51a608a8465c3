package io.github.moe4j.api;

/**
 * Expert-choice routing (SPEC §7): \( s = \operatorname{softmax}(z) \) over experts, and each
 * expert takes the C tokens of the group with the largest \( s_{t,e} \) (ties: lower token index
 * first); a token's output is \( \sum_{e\ \text{that took}\ t} s_{t,e} f_e(x_t) \). C comes from
 * {@link MoeConfig#capacity()}, which must not be dropless. Not for causal decoding: an expert
 * sees every token of the group.
 *
 * <pre>
 * Zhou, Y., Lei, T., Liu, H., Du, N., Huang, Y., Zhao, V., Dai, A., Chen, Z., Le, Q., Laudon, J.
 * "Mixture-of-Experts with Expert Choice Routing." NeurIPS 2022. arXiv:2202.09368, Section 3.1.
 * </pre>
 * Mirrors google/flaxformer {@code flaxformer/architectures/moe/routing.py}
 * {@code ExpertsChooseMaskedRouter._compute_routing_instructions}.
 */
public record ExpertChoiceRouterConfig() implements RouterConfig {

    @Override
    public int choicesPerToken(int experts) {
        return experts;
    }

    @Override
    public void validate(int experts) {
        // any number of experts works
    }
}

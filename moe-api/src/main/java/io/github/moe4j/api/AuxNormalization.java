package io.github.moe4j.api;

/**
 * What the dispatch fraction \( f_i \) of the load-balancing loss
 * \( L_{aux} = E \sum_i f_i P_i \) counts (SPEC §5). The three conventions give different numbers
 * for the same routing; each is named after the codebases that use it.
 */
public enum AuxNormalization {
    /**
     * \( f_i = \operatorname{mean}_t 1[S_t[0] = i] \): first choices only (sums to 1).
     * Switch Transformer, GShard, DeepSpeed {@code top1gating}/{@code top2gating}.
     */
    TOP1,
    /**
     * \( f_i = \tfrac{1}{k}\operatorname{mean}_t 1[i \in S_t] \): all k choices, divided by k (sums to 1).
     * Megatron, MegaBlocks, DeepSeek, DeepSpeed {@code topkgating}.
     */
    TOPK_NORMALIZED,
    /**
     * \( f_i = \operatorname{mean}_t 1[i \in S_t] \): all k choices, not divided (sums to k, so the
     * loss equals k at perfect balance). Hugging Face Mixtral {@code load_balancing_loss_func},
     * flaxformer {@code _load_balancing_loss}.
     */
    TOPK_COUNT
}

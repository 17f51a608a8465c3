package io.github.moe4j.api;

/**
 * Which assignments take an expert's C capacity slots first (SPEC §4). Each expert keeps its
 * first C assignments in this order.
 */
public enum Priority {
    /**
     * By (rank, token): every token's first choice, in token order, then every second choice, and
     * so on. GShard Algorithm 2, Mesh-TF, flaxformer, V-MoE, Tutel, DeepSpeed {@code top2gating}.
     */
    RANK_MAJOR,
    /**
     * By (token, rank): a token's second choice can pre-empt a later token's first.
     * MegaBlocks with capacity, DeepSpeed {@code topkgating(drop_policy='position')}.
     */
    TOKEN_MAJOR,
    /**
     * Batch-prioritised routing (Riquelme et al. 2021, V-MoE): by (rank, the token's top-1
     * probability descending, token). flaxformer {@code batch_prioritized_routing=True}.
     */
    BATCH_PRIORITIZED,
    /**
     * Per expert, by (gate value descending, token): the assignments with the largest gates are
     * kept; slots are then numbered in token order among the kept. Megatron
     * {@code moe_token_drop_policy='probs'}, DeepSpeed {@code topkgating(drop_policy='probs')}.
     */
    GATE_VALUE
}

package io.github.moe4j.api;

/** What a capacity factor multiplies (SPEC §4, research §4.1). */
public enum CapacityBase {
    /** \( C = cf \cdot T / E \): tokens, whatever k is. Mesh-TF, flaxformer, Switch. */
    TOKENS,
    /** \( C = cf \cdot k \cdot T / E \): assignments. GShard, DeepSpeed, Megatron, MegaBlocks. */
    ASSIGNMENTS
}

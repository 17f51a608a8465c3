package io.github.moe4j.api;

/** How a fractional capacity \( cf \cdot T / E \) becomes an integer (SPEC §4). */
public enum Rounding {
    /** Up. DeepSpeed {@code _capacity}, V-MoE, Megatron. */
    CEIL,
    /** Down. Mesh-TF {@code int(...)}, MegaBlocks. */
    FLOOR,
    /** To nearest, ties to even (Python's {@code round}). flaxformer {@code int(round(...))}. */
    ROUND_HALF_EVEN
}

package io.github.moe4j.api;

/**
 * Whether tokens marked as padding by {@link ForwardOptions#paddingMask()} are still routed
 * (SPEC §4a). In both policies padding tokens are left out of every loss's numerator and
 * denominator.
 */
public enum PaddingPolicy {
    /**
     * Padding tokens are routed and processed like real ones; the mask only affects the losses.
     * Hugging Face Mixtral ({@code attention_mask} is used by {@code load_balancing_loss_func} only).
     */
    ROUTED,
    /**
     * Padding tokens choose no expert, take no capacity and output exactly zero. flaxformer
     * ({@code TokensChooseMaskedRouter} zeroes padding tokens' router probabilities).
     */
    NOT_ROUTED
}

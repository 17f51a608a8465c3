package io.github.moe4j.api;

/**
 * How one forward call runs: inference or training, the seed and step noise is made from,
 * routing groups, an optional padding mask and optional caller-supplied noise.
 *
 * <p>Routing groups (SPEC §4a): the call's T tokens are split into {@code groups} equal,
 * contiguous groups; each is routed and fills capacity on its own, with C computed from the
 * group's size, and each loss is computed per group and averaged over groups. Hugging Face Switch
 * uses one group per batch row; GShard and flaxformer call them {@code num_groups}.
 *
 * @param mode        inference or training
 * @param seed        the seed noise is drawn from in training
 * @param step        the training step, mixed into the noise so every step draws afresh
 * @param groups      G, at least 1; must divide T
 * @param paddingMask [T] with 1 for a real token and 0 for padding, or null (every token is real)
 * @param noise       caller-supplied noise for training, or null to draw it with {@link Noise}
 */
public record ForwardOptions(Mode mode, long seed, long step, int groups, Tensor paddingMask, RouterNoise noise) {

    /** The seed used when the caller gives none. */
    public static final long DEFAULT_SEED = 20170123L;

    public ForwardOptions {
        Checks.requireNonNull(mode, "mode");
        Checks.requirePositive(groups, "groups");
        if (mode == Mode.INFERENCE && noise != null) {
            throw new IllegalArgumentException("noise was supplied for an inference call; inference draws no noise (use training(...))");
        }
    }

    /** Inference: no noise, one group, no padding. */
    public static ForwardOptions inference() {
        return new ForwardOptions(Mode.INFERENCE, DEFAULT_SEED, 0, 1, null, null);
    }

    /** Training with noise drawn from (seed, step), one group, no padding. */
    public static ForwardOptions training(long seed, long step) {
        return new ForwardOptions(Mode.TRAINING, seed, step, 1, null, null);
    }

    /** A copy with G routing groups. */
    public ForwardOptions withGroups(int g) {
        return new ForwardOptions(mode, seed, step, g, paddingMask, noise);
    }

    /** A copy with a [T] padding mask (1 = real token, 0 = padding). */
    public ForwardOptions withPaddingMask(Tensor mask) {
        return new ForwardOptions(mode, seed, step, groups, mask, noise);
    }

    /** A copy that uses the given noise instead of drawing it (training only). */
    public ForwardOptions withNoise(RouterNoise n) {
        return new ForwardOptions(mode, seed, step, groups, paddingMask, n);
    }

    /**
     * The noise a call of {@code tokens} tokens uses: none in inference, the supplied noise
     * (validated) or noise drawn from (seed, step) in training.
     */
    public RouterNoise noiseFor(MoeConfig config, int tokens) {
        if (mode == Mode.INFERENCE) {
            return RouterNoise.NONE;
        }
        return noise != null ? noise.validate(config, tokens) : Noise.draw(config, tokens, seed, step);
    }

    /**
     * Checks the options against a call of {@code tokens} tokens: G divides T, and the padding
     * mask, if any, is [T] of zeros and ones.
     *
     * @throws IllegalArgumentException naming the option, its value and the rule
     */
    public ForwardOptions validate(int tokens) {
        if (tokens % groups != 0) {
            throw new IllegalArgumentException("groups = " + groups + " must divide the number of tokens " + tokens);
        }
        if (paddingMask != null) {
            paddingMask.requireShape("paddingMask", "[tokens]", tokens);
            for (int t = 0; t < tokens; t++) {
                float m = paddingMask.get(t);
                if (m != 0f && m != 1f) {
                    throw new IllegalArgumentException("paddingMask[" + t + "] = " + m + " must be 0 (padding) or 1 (real token)");
                }
            }
        }
        return this;
    }
}

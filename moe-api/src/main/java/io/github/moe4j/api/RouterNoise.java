package io.github.moe4j.api;

/**
 * The random numbers one training call uses, made by {@link Noise} or supplied by the caller.
 * A component the configuration does not use is {@code null}.
 *
 * @param jitter              [T, d] multipliers \( u_{t,j} \in [1-\varepsilon, 1+\varepsilon) \) of Switch's input jitter
 * @param logitNoise          [T, E] standard normal \( \varepsilon_{t,i} \) of noisy top-k
 * @param secondExpertUniform [T] uniforms \( u_t \in [0, 1) \) of GShard's random second-expert policy
 */
public record RouterNoise(Tensor jitter, Tensor logitNoise, Tensor secondExpertUniform) {

    /** No noise at all. */
    public static final RouterNoise NONE = new RouterNoise(null, null, null);

    /**
     * Checks that this noise fits a call of {@code tokens} tokens with {@code config}: every
     * component the configuration uses is present with its shape and finite.
     *
     * @throws IllegalArgumentException naming the component and both shapes
     */
    public RouterNoise validate(MoeConfig config, int tokens) {
        Needs needs = Needs.of(config);
        check(jitter, needs.jitter, "noise.jitter", "[tokens, modelDim]", tokens, config.modelDim());
        check(logitNoise, needs.logitNoise, "noise.logitNoise", "[tokens, experts]", tokens, config.experts());
        check(secondExpertUniform, needs.secondExpert, "noise.secondExpertUniform", "[tokens]", tokens);
        return this;
    }

    private static void check(Tensor t, boolean needed, String name, String layout, int... shape) {
        if (needed && t == null) {
            throw new IllegalArgumentException(name + " is missing; this configuration draws it in training with shape "
                    + layout + " = " + java.util.Arrays.toString(shape));
        }
        if (t != null) {
            t.requireShape(name, layout, shape).requireFinite(name);
        }
    }

    /** Which components a configuration draws in training. */
    record Needs(boolean jitter, boolean logitNoise, boolean secondExpert) {
        static Needs of(MoeConfig config) {
            boolean jitter = config.router() instanceof TokenChoiceRouterConfig t && t.jitter() > 0;
            boolean logit = config.router() instanceof NoisyTopKRouterConfig n && n.noise() == NoisyTopKRouterConfig.Noise.LEARNED;
            boolean second = config.router() instanceof TokenChoiceRouterConfig t
                    && t.secondExpertPolicy().kind() == SecondExpertPolicy.Kind.RANDOM;
            return new Needs(jitter, logit, second);
        }
    }
}

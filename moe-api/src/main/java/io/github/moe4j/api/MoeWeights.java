package io.github.moe4j.api;

import org.apache.commons.rng.UniformRandomProvider;
import org.apache.commons.rng.sampling.distribution.ZigguratSampler;

/**
 * The parameters of one MoE layer, row-major, in moe4j's layout (SPEC §8):
 *
 * <table>
 * <caption>Weights and their shapes</caption>
 * <tr><th>component</th><th>shape</th><th>present when</th></tr>
 * <tr><td>router \( W_r \)</td><td>[d, E]</td><td>always (\( z = x W_r \))</td></tr>
 * <tr><td>routerBias \( b_r \)</td><td>[E]</td><td>{@link MoeConfig#routerBias()}</td></tr>
 * <tr><td>noiseRouter \( W_{noise} \)</td><td>[d, E]</td><td>noisy top-k with learned noise</td></tr>
 * <tr><td>wIn \( W_{in} \)</td><td>[E, d, h]</td><td>always</td></tr>
 * <tr><td>wGate \( W_{gate} \)</td><td>[E, d, h]</td><td>gated activations</td></tr>
 * <tr><td>wOut \( W_{out} \)</td><td>[E, h, d]</td><td>always</td></tr>
 * <tr><td>bIn \( b_{in} \)</td><td>[E, h]</td><td>{@link MoeConfig#expertBias()}</td></tr>
 * <tr><td>bOut \( b_{out} \)</td><td>[E, d]</td><td>{@link MoeConfig#expertBias()}</td></tr>
 * </table>
 *
 * <p>Absent components are {@code null}. Hugging Face checkpoints store {@code nn.Linear} weights as
 * [out, in]; transposing them is a loader's job, never the layer's. {@link #validate(MoeConfig)}
 * checks presence, shapes and finiteness against a configuration.
 *
 * @param router      \( W_r \), [d, E]
 * @param routerBias  \( b_r \), [E], or null
 * @param noiseRouter \( W_{noise} \), [d, E], or null
 * @param wIn         \( W_{in} \), [E, d, h]
 * @param wGate       \( W_{gate} \), [E, d, h], or null
 * @param wOut        \( W_{out} \), [E, h, d]
 * @param bIn         \( b_{in} \), [E, h], or null
 * @param bOut        \( b_{out} \), [E, d], or null
 */
public record MoeWeights(Tensor router, Tensor routerBias, Tensor noiseRouter, Tensor wIn, Tensor wGate,
                         Tensor wOut, Tensor bIn, Tensor bOut) {

    private static final long WEIGHT_STREAM = 0;

    public MoeWeights {
        Checks.requireNonNull(router, "weights.router");
        Checks.requireNonNull(wIn, "weights.wIn");
        Checks.requireNonNull(wOut, "weights.wOut");
    }

    /**
     * Checks that every component the configuration needs is present with the right shape and
     * finite, and that no component it does not use is present.
     *
     * @throws IllegalArgumentException naming the component, its shape and the expected shape
     * @throws NonFiniteException       naming the component and the position of a NaN or infinity
     */
    public MoeWeights validate(MoeConfig config) {
        int d = config.modelDim();
        int h = config.hiddenDim();
        int e = config.experts();
        check(router, "weights.router", "[modelDim, experts]", true, d, e);
        check(routerBias, "weights.routerBias", "[experts]", config.routerBias(), e);
        boolean learnedNoise = config.router() instanceof NoisyTopKRouterConfig n && n.noise() == NoisyTopKRouterConfig.Noise.LEARNED;
        check(noiseRouter, "weights.noiseRouter", "[modelDim, experts]", learnedNoise, d, e);
        check(wIn, "weights.wIn", "[experts, modelDim, hiddenDim]", true, e, d, h);
        check(wGate, "weights.wGate", "[experts, modelDim, hiddenDim]", config.activation().isGated(), e, d, h);
        check(wOut, "weights.wOut", "[experts, hiddenDim, modelDim]", true, e, h, d);
        check(bIn, "weights.bIn", "[experts, hiddenDim]", config.expertBias(), e, h);
        check(bOut, "weights.bOut", "[experts, modelDim]", config.expertBias(), e, d);
        return this;
    }

    private static void check(Tensor t, String name, String layout, boolean required, int... shape) {
        if (required && t == null) {
            throw new IllegalArgumentException(name + " is missing; the configuration needs it with shape " + layout
                    + " = " + java.util.Arrays.toString(shape));
        }
        if (!required && t != null) {
            throw new IllegalArgumentException(name + " is present but the configuration does not use it"
                    + " (Hint: turn on the matching option or leave it null)");
        }
        if (t != null) {
            t.requireShape(name, layout, shape).requireFinite(name);
        }
    }

    /**
     * Random weights for a configuration, a deterministic function of {@code seed}: every matrix
     * entry is drawn from \( N(0, 1/\mathrm{fan\_in}) \) and every bias from \( N(0, 0.1^2) \), in
     * the order router, routerBias, noiseRouter, wIn, wGate, wOut, bIn, bOut, each row-major, from
     * one Commons RNG {@code XO_SHI_RO_256_PP} generator (seeded as {@link Noise} seeds its streams,
     * stream 0) with a Ziggurat normal sampler.
     */
    public static MoeWeights random(MoeConfig config, long seed) {
        UniformRandomProvider rng = Noise.generator(seed, 0, WEIGHT_STREAM);
        ZigguratSampler.NormalizedGaussian normal = ZigguratSampler.NormalizedGaussian.of(rng);
        int d = config.modelDim();
        int h = config.hiddenDim();
        int e = config.experts();
        boolean learnedNoise = config.router() instanceof NoisyTopKRouterConfig n && n.noise() == NoisyTopKRouterConfig.Noise.LEARNED;
        Tensor router = gaussian(normal, 1 / Math.sqrt(d), d, e);
        Tensor routerBias = config.routerBias() ? gaussian(normal, 0.1, e) : null;
        Tensor noiseRouter = learnedNoise ? gaussian(normal, 1 / Math.sqrt(d), d, e) : null;
        Tensor wIn = gaussian(normal, 1 / Math.sqrt(d), e, d, h);
        Tensor wGate = config.activation().isGated() ? gaussian(normal, 1 / Math.sqrt(d), e, d, h) : null;
        Tensor wOut = gaussian(normal, 1 / Math.sqrt(h), e, h, d);
        Tensor bIn = config.expertBias() ? gaussian(normal, 0.1, e, h) : null;
        Tensor bOut = config.expertBias() ? gaussian(normal, 0.1, e, d) : null;
        return new MoeWeights(router, routerBias, noiseRouter, wIn, wGate, wOut, bIn, bOut);
    }

    private static Tensor gaussian(ZigguratSampler.NormalizedGaussian normal, double std, int... shape) {
        int n = 1;
        for (int s : shape) {
            n *= s;
        }
        float[] data = new float[n];
        for (int i = 0; i < n; i++) {
            data[i] = (float) (std * normal.sample());
        }
        return Tensor.of(data, shape);
    }

    /** A builder for weights assembled from tensors; unset optional components stay null. */
    public static Builder builder() {
        return new Builder();
    }

    /** Collects the components of {@link MoeWeights}. */
    public static final class Builder {
        private Tensor router;
        private Tensor routerBias;
        private Tensor noiseRouter;
        private Tensor wIn;
        private Tensor wGate;
        private Tensor wOut;
        private Tensor bIn;
        private Tensor bOut;

        Builder() {}

        /** \( W_r \), [d, E]. */
        public Builder router(Tensor t) {
            this.router = t;
            return this;
        }

        /** \( b_r \), [E]. */
        public Builder routerBias(Tensor t) {
            this.routerBias = t;
            return this;
        }

        /** \( W_{noise} \), [d, E]. */
        public Builder noiseRouter(Tensor t) {
            this.noiseRouter = t;
            return this;
        }

        /** \( W_{in} \), [E, d, h]. */
        public Builder wIn(Tensor t) {
            this.wIn = t;
            return this;
        }

        /** \( W_{gate} \), [E, d, h]. */
        public Builder wGate(Tensor t) {
            this.wGate = t;
            return this;
        }

        /** \( W_{out} \), [E, h, d]. */
        public Builder wOut(Tensor t) {
            this.wOut = t;
            return this;
        }

        /** \( b_{in} \), [E, h]. */
        public Builder bIn(Tensor t) {
            this.bIn = t;
            return this;
        }

        /** \( b_{out} \), [E, d]. */
        public Builder bOut(Tensor t) {
            this.bOut = t;
            return this;
        }

        /** Builds; call {@link MoeWeights#validate(MoeConfig)} to check against a configuration. */
        public MoeWeights build() {
            return new MoeWeights(router, routerBias, noiseRouter, wIn, wGate, wOut, bIn, bOut);
        }
    }
}

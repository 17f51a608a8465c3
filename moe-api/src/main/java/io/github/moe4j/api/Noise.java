package io.github.moe4j.api;

import org.apache.commons.rng.UniformRandomProvider;
import org.apache.commons.rng.core.source64.SplitMix64;
import org.apache.commons.rng.sampling.distribution.ZigguratSampler;
import org.apache.commons.rng.simple.RandomSource;

/**
 * The one place moe4j makes random numbers for a forward pass (SPEC §2), on the host, so that every
 * backend sees the same numbers.
 *
 * <p>Each kind of noise has its own stream: a Commons RNG {@code XO_SHI_RO_256_PP} generator whose
 * 256-bit state is expanded from {@code (seed, step, stream)} by {@link #generator}, with stream 1
 * for jitter, 2 for logit noise and 3 for the second-expert uniforms. Values are drawn in row-major order: [token, feature] for
 * jitter, [token, expert] for logit noise, [token] for the uniforms.
 * <ul>
 * <li>jitter: \( u = 1 - \varepsilon + 2\varepsilon\,U \), \( U \in [0, 1) \) from {@code nextDouble()};</li>
 * <li>logit noise: standard normal, Commons RNG {@code ZigguratSampler.NormalizedGaussian};</li>
 * <li>second expert: {@code nextDouble()}.</li>
 * </ul>
 */
public final class Noise {
    private static final long JITTER_STREAM = 1;
    private static final long LOGIT_STREAM = 2;
    private static final long SECOND_EXPERT_STREAM = 3;

    private Noise() {}

    /** The noise a training call of {@code tokens} tokens draws for {@code config}; {@link RouterNoise#NONE} if it draws none. */
    public static RouterNoise draw(MoeConfig config, int tokens, long seed, long step) {
        Checks.requireNonNegative(tokens, "tokens");
        RouterNoise.Needs needs = RouterNoise.Needs.of(config);
        Tensor jitter = null;
        if (needs.jitter()) {
            double eps = ((TokenChoiceRouterConfig) config.router()).jitter();
            UniformRandomProvider rng = generator(seed, step, JITTER_STREAM);
            float[] u = new float[tokens * config.modelDim()];
            for (int i = 0; i < u.length; i++) {
                u[i] = (float) (1 - eps + 2 * eps * rng.nextDouble());
            }
            jitter = Tensor.of(u, tokens, config.modelDim());
        }
        Tensor logitNoise = null;
        if (needs.logitNoise()) {
            ZigguratSampler.NormalizedGaussian normal = ZigguratSampler.NormalizedGaussian.of(generator(seed, step, LOGIT_STREAM));
            float[] eps = new float[tokens * config.experts()];
            for (int i = 0; i < eps.length; i++) {
                eps[i] = (float) normal.sample();
            }
            logitNoise = Tensor.of(eps, tokens, config.experts());
        }
        Tensor uniforms = null;
        if (needs.secondExpert()) {
            UniformRandomProvider rng = generator(seed, step, SECOND_EXPERT_STREAM);
            float[] u = new float[tokens];
            for (int i = 0; i < tokens; i++) {
                // rounding to float can give 1.0f; keep the documented half-open range
                u[i] = Math.min((float) rng.nextDouble(), Math.nextDown(1f));
            }
            uniforms = Tensor.of(u, tokens);
        }
        return new RouterNoise(jitter, logitNoise, uniforms);
    }

    /**
     * A xoshiro256++ generator for one stream of one step. Its state is not the raw
     * {@code (seed, step, stream)}: xoshiro's first outputs from such a sparse state are near zero.
     * Each word is folded in through SplitMix64, \( h \leftarrow \mathrm{sm}(h \oplus w) \), and the
     * final h seeds a SplitMix64 that fills the 256-bit state, the expansion the xoshiro authors
     * recommend.
     *
     * <p>Public so that anything else moe4j draws from a seed (random weights, the demo's tokens, the
     * conformance suite's inputs) is seeded the same way: streams that differ in one word share no
     * draws, even the first.
     *
     * @param seed   the seed
     * @param step   the training step, or 0 outside a forward pass
     * @param stream which stream: each consumer of randomness uses its own
     */
    public static UniformRandomProvider generator(long seed, long step, long stream) {
        long h = 0;
        for (long word : new long[] {seed, step, stream}) {
            h = new SplitMix64(h ^ word).nextLong();
        }
        SplitMix64 fill = new SplitMix64(h);
        long[] state = {fill.nextLong(), fill.nextLong(), fill.nextLong(), fill.nextLong()};
        return RandomSource.XO_SHI_RO_256_PP.create(state);
    }
}

package io.github.moe4j.reference;

import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.ExpertChoiceRouterConfig;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.Mode;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.PaddingPolicy;
import io.github.moe4j.api.RouterNoise;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import org.apache.commons.rng.UniformRandomProvider;
import org.apache.commons.rng.sampling.distribution.ZigguratSampler;
import org.apache.commons.rng.simple.RandomSource;

/**
 * One generated situation for the reference layer: a configuration, how its weights and input are
 * made, and how it is called. Everything is a deterministic function of the components, so the
 * record's {@code toString} (which jqwik prints for a failing sample) is enough to reproduce it.
 *
 * @param config            the layer
 * @param weightSeed        seed of {@link MoeWeights#random(MoeConfig, long)}
 * @param routerScale       factor on the router weights and bias (large values give logits of ±50)
 * @param tiedRouterColumns whether expert 1's router column (and bias) is a copy of expert 0's, so
 *                          that every token has an exact logit tie (needs E ≥ 2)
 * @param tokens            T
 * @param groups            G, divides T
 * @param inputStyle        how the rows of x are drawn
 * @param inputSeed         seed of x
 * @param padding           null for no mask, else T characters: '1' a real token, '0' padding
 * @param mode              inference or training
 * @param seed              the noise seed (training)
 * @param step              the noise step (training)
 */
record MoeCase(MoeConfig config, long weightSeed, double routerScale, boolean tiedRouterColumns, int tokens,
               int groups, InputStyle inputStyle, long inputSeed, String padding, Mode mode, long seed, long step) {

    /** How the rows of x are drawn. */
    enum InputStyle {
        /** Every entry standard normal. */
        GAUSSIAN,
        /** Some rows repeat an earlier row exactly (ties between tokens). */
        REPEATED_ROWS,
        /** Some rows are all zero (with no router bias: all logits tie). */
        ZERO_ROWS
    }

    MoeCase {
        if (padding != null && padding.length() != tokens) {
            throw new IllegalArgumentException("padding " + padding + " is not of length " + tokens);
        }
        if (groups < 1 || tokens % groups != 0) {
            throw new IllegalArgumentException("groups " + groups + " must divide tokens " + tokens);
        }
    }

    int experts() {
        return config.experts();
    }

    int d() {
        return config.modelDim();
    }

    /** k for the token-choice routers, 0 for expert choice. */
    int k() {
        return config.topK();
    }

    /** Entries per token in the routing: k, or E for expert choice. */
    int choices() {
        return config.choicesPerToken();
    }

    int groupSize() {
        return tokens / groups;
    }

    boolean isTokenChoice() {
        return config.router() instanceof TokenChoiceRouterConfig;
    }

    boolean isNoisy() {
        return config.router() instanceof NoisyTopKRouterConfig;
    }

    boolean isExpertChoice() {
        return config.router() instanceof ExpertChoiceRouterConfig;
    }

    boolean isReal(int t) {
        return padding == null || padding.charAt(t) == '1';
    }

    /** Whether token t is routed at all. */
    boolean isRouted(int t) {
        return isReal(t) || config.padding() == PaddingPolicy.ROUTED;
    }

    /** The real tokens of group g, in increasing order. */
    int[] realTokens(int g) {
        return java.util.stream.IntStream.range(g * groupSize(), (g + 1) * groupSize()).filter(this::isReal).toArray();
    }

    /** The weights: random, then scaled and tied as this case says. */
    ReferenceWeights weights() {
        ReferenceWeights w = ReferenceWeights.of(config, MoeWeights.random(config, weightSeed));
        int d = config.modelDim();
        int e = config.experts();
        double[] router = w.router().clone();
        double[] bias = w.routerBias() == null ? null : w.routerBias().clone();
        double[] noise = w.noiseRouter() == null ? null : w.noiseRouter().clone();
        for (int i = 0; i < router.length; i++) {
            router[i] *= routerScale;
        }
        if (bias != null) {
            for (int i = 0; i < bias.length; i++) {
                bias[i] *= routerScale;
            }
        }
        if (tiedRouterColumns && e >= 2) {
            for (int j = 0; j < d; j++) {
                router[j * e + 1] = router[j * e];
                if (noise != null) {
                    noise[j * e + 1] = noise[j * e];
                }
            }
            if (bias != null) {
                bias[1] = bias[0];
            }
        }
        return new ReferenceWeights(d, config.hiddenDim(), e, router, bias, noise, w.wIn(), w.wGate(), w.wOut(), w.bIn(), w.bOut());
    }

    /** x, [T, d]. */
    double[] input() {
        int d = config.modelDim();
        // a Long seed is expanded by SplitMix64; a raw low-entropy long[] state would make the first draws
        // degenerate (x ≈ 1e-19 for small seeds)
        UniformRandomProvider rng = RandomSource.XO_SHI_RO_256_PP.create(Long.valueOf(inputSeed));
        ZigguratSampler.NormalizedGaussian normal = ZigguratSampler.NormalizedGaussian.of(rng);
        double[] x = new double[tokens * d];
        for (int t = 0; t < tokens; t++) {
            if (inputStyle == InputStyle.REPEATED_ROWS && t > 0 && rng.nextInt(3) == 0) {
                System.arraycopy(x, rng.nextInt(t) * d, x, t * d, d);
            } else if (inputStyle == InputStyle.ZERO_ROWS && rng.nextInt(3) == 0) {
                continue;
            } else {
                for (int j = 0; j < d; j++) {
                    x[t * d + j] = normal.sample();
                }
            }
        }
        return x;
    }

    /** The padding mask as a [T] tensor, or null. */
    Tensor paddingMask() {
        if (padding == null) {
            return null;
        }
        float[] m = new float[tokens];
        for (int t = 0; t < tokens; t++) {
            m[t] = isReal(t) ? 1f : 0f;
        }
        return Tensor.of(m, tokens);
    }

    ForwardOptions options() {
        return new ForwardOptions(mode, seed, step, groups, paddingMask(), null);
    }

    /** The noise this case's call draws (none in inference). */
    RouterNoise noise() {
        return options().noiseFor(config, tokens);
    }

    /** What the experts receive: x, or x times the jitter when the jitter also feeds the experts. */
    double[] expertInput() {
        double[] x = input();
        RouterNoise n = noise();
        if (n.jitter() != null && ((TokenChoiceRouterConfig) config.router()).jitterTarget()
                == TokenChoiceRouterConfig.JitterTarget.ROUTER_AND_EXPERTS) {
            for (int i = 0; i < x.length; i++) {
                x[i] *= n.jitter().get(i);
            }
        }
        return x;
    }

    ReferenceLayer layer() {
        return new ReferenceLayer(config, weights());
    }

    ReferenceForward forward() {
        return layer().forward(input(), tokens, options());
    }

    MoeCase withConfig(MoeConfig c) {
        return new MoeCase(c, weightSeed, routerScale, tiedRouterColumns, tokens, groups, inputStyle, inputSeed, padding, mode, seed, step);
    }

    MoeCase withCapacity(Capacity c) {
        return withConfig(config.toBuilder().capacity(c).build());
    }

    MoeCase withMode(Mode m) {
        return new MoeCase(config, weightSeed, routerScale, tiedRouterColumns, tokens, groups, inputStyle, inputSeed, padding, m, seed, step);
    }

    MoeCase withNoiseSeed(long newSeed, long newStep) {
        return new MoeCase(config, weightSeed, routerScale, tiedRouterColumns, tokens, groups, inputStyle, inputSeed, padding, mode, newSeed, newStep);
    }

    MoeCase withGroups(int g) {
        return new MoeCase(config, weightSeed, routerScale, tiedRouterColumns, tokens, g, inputStyle, inputSeed, padding, mode, seed, step);
    }

    MoeCase withPadding(String p) {
        return new MoeCase(config, weightSeed, routerScale, tiedRouterColumns, tokens, groups, inputStyle, inputSeed, p, mode, seed, step);
    }

    MoeCase withRouterScale(double scale) {
        return new MoeCase(config, weightSeed, scale, tiedRouterColumns, tokens, groups, inputStyle, inputSeed, padding, mode, seed, step);
    }

    MoeCase withTokens(int t, int g, String p) {
        return new MoeCase(config, weightSeed, routerScale, tiedRouterColumns, t, g, inputStyle, inputSeed, p, mode, seed, step);
    }

    /** Options with this case's mode, seed, step, G and mask, and the given noise (training) instead of drawing it. */
    ForwardOptions optionsWithNoise(RouterNoise noise, int g, Tensor mask) {
        return new ForwardOptions(mode, seed, step, g, mask, mode == Mode.TRAINING ? noise : null);
    }

    /**
     * This case's layer on the given rows of its input (in that order), each row keeping its own
     * noise and padding flag, split into g groups.
     */
    ReferenceForward forwardRows(int[] rows, int g) {
        String p = paddingOf(rows);
        Tensor mask = p == null ? null : withTokens(rows.length, 1, p).paddingMask();
        return layer().forward(rows(input(), config.modelDim(), rows), rows.length, optionsWithNoise(rows(noise(), rows), g, mask));
    }

    /** The given rows of each [T, ...] component of some noise. */
    static RouterNoise rows(RouterNoise n, int[] rows) {
        return new RouterNoise(rows(n.jitter(), rows), rows(n.logitNoise(), rows), rows(n.secondExpertUniform(), rows));
    }

    /** The given rows of a [T, ...] tensor (null stays null). */
    static Tensor rows(Tensor t, int[] rows) {
        if (t == null) {
            return null;
        }
        int[] shape = t.shape();
        int width = 1;
        for (int i = 1; i < shape.length; i++) {
            width *= shape[i];
        }
        float[] all = t.toArray();
        float[] out = new float[rows.length * width];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(all, rows[i] * width, out, i * width, width);
        }
        shape[0] = rows.length;
        return Tensor.of(out, shape);
    }

    /** The given rows of a [T, width] double matrix. */
    static double[] rows(double[] m, int width, int[] rows) {
        double[] out = new double[rows.length * width];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(m, rows[i] * width, out, i * width, width);
        }
        return out;
    }

    /** The padding string of the given rows (null stays null). */
    String paddingOf(int[] rows) {
        if (padding == null) {
            return null;
        }
        StringBuilder b = new StringBuilder();
        for (int r : rows) {
            b.append(padding.charAt(r));
        }
        return b.toString();
    }

    MoeCase withoutTies() {
        return new MoeCase(config, weightSeed, routerScale, false, tokens, groups,
                inputStyle == InputStyle.ZERO_ROWS ? InputStyle.GAUSSIAN : inputStyle, inputSeed, padding, mode, seed, step);
    }
}

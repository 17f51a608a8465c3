package io.github.moe4j.conformance;

import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.ExpertChoiceRouterConfig;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.Mode;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Noise;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.util.Arrays;
import org.apache.commons.rng.UniformRandomProvider;
import org.apache.commons.rng.sampling.distribution.ZigguratSampler;

/**
 * One generated test case: a configuration, how its weights and input are made, and the options of
 * the call. Everything is a deterministic function of these components, so the case printed by a
 * failure reproduces it.
 *
 * @param config         the layer
 * @param origin         {@code "composed"} or the preset it came from, e.g. {@code "Presets.mixtral()"}
 * @param routerInit     random router weights, or tied logits
 * @param weightSeed     the seed of {@link MoeWeights#random(MoeConfig, long)}
 * @param groups         G
 * @param tokensPerGroup T / G
 * @param padding        [T] true for a real token, false for padding; null for no mask
 * @param mode           inference or training
 * @param noiseSeed      the seed noise is drawn from in training
 * @param step           the training step
 * @param inputScale     the standard deviation of the Gaussian input (30 gives logits of tens)
 * @param inputSeed      the seed of the input and of dY
 */
public record MoeCase(MoeConfig config, String origin, RouterInit routerInit, long weightSeed, int groups,
                      int tokensPerGroup, boolean[] padding, Mode mode, long noiseSeed, long step, double inputScale,
                      long inputSeed) {

    /** The streams of {@link Noise#generator} this class draws from: the tied router bias, and the input and dY. */
    private static final long TIED_BIAS_STREAM = 0x6D6F6534_00L;
    private static final long TENSOR_STREAM = 0x6D6F6534_10L;

    /** How the router weights are made. */
    public enum RouterInit {
        /** {@link MoeWeights#random}: no two logits are equal. */
        RANDOM,
        /**
         * Router weight zero, so every logit is the router bias (or 0 without one), whose entries
         * are drawn from {-0.5, 0, 0.5}: exact ties in every floating-point format, which only the
         * tie rule (value descending, then index ascending) decides.
         */
        TIED
    }

    /** T. */
    public int tokens() {
        return groups * tokensPerGroup;
    }

    /** A copy with another configuration (the other components unchanged). */
    public MoeCase withConfig(MoeConfig c) {
        return new MoeCase(c, origin, routerInit, weightSeed, groups, tokensPerGroup, padding, mode, noiseSeed, step,
                inputScale, inputSeed);
    }

    /** A copy with another capacity. */
    public MoeCase withCapacity(Capacity capacity) {
        return withConfig(config.toBuilder().capacity(capacity).build());
    }

    /** A copy in another mode. */
    public MoeCase withMode(Mode m) {
        return new MoeCase(config, origin, routerInit, weightSeed, groups, tokensPerGroup, padding, m, noiseSeed, step,
                inputScale, inputSeed);
    }

    /** A copy with another noise seed. */
    public MoeCase withNoiseSeed(long seed) {
        return new MoeCase(config, origin, routerInit, weightSeed, groups, tokensPerGroup, padding, mode, seed, step,
                inputScale, inputSeed);
    }

    /** The weights, per {@link #routerInit()}. */
    public MoeWeights weights() {
        MoeWeights w = MoeWeights.random(config, weightSeed);
        if (routerInit == RouterInit.RANDOM) {
            return w;
        }
        int d = config.modelDim();
        int e = config.experts();
        Tensor bias = null;
        if (w.routerBias() != null) {
            UniformRandomProvider rng = Noise.generator(weightSeed, 0, TIED_BIAS_STREAM);
            float[] b = new float[e];
            for (int i = 0; i < e; i++) {
                b[i] = (rng.nextInt(3) - 1) * 0.5f;
            }
            bias = Tensor.of(b, e);
        }
        Tensor noiseRouter = w.noiseRouter() == null ? null : Tensor.zeros(d, e);
        return new MoeWeights(Tensor.zeros(d, e), bias, noiseRouter, w.wIn(), w.wGate(), w.wOut(), w.bIn(), w.bOut());
    }

    /** [T, d] Gaussian input of standard deviation {@link #inputScale()}. */
    public Tensor input() {
        return gaussian(inputSeed, 1, inputScale, tokens(), config.modelDim());
    }

    /** [T, d] the gradient of the loss with respect to the output, standard normal. */
    public Tensor dOutput() {
        return gaussian(inputSeed, 2, 1, tokens(), config.modelDim());
    }

    /** [T] the padding mask, or null. */
    public Tensor paddingMask() {
        if (padding == null) {
            return null;
        }
        float[] m = new float[padding.length];
        for (int t = 0; t < m.length; t++) {
            m[t] = padding[t] ? 1f : 0f;
        }
        return Tensor.of(m, m.length);
    }

    /** The options of the call. */
    public ForwardOptions options() {
        ForwardOptions o = mode == Mode.TRAINING ? ForwardOptions.training(noiseSeed, step) : ForwardOptions.inference();
        o = o.withGroups(groups);
        return padding == null ? o : o.withPaddingMask(paddingMask());
    }

    static Tensor gaussian(long seed, long stream, double scale, int rows, int cols) {
        // not a raw long[] state: xoshiro's first draw from {seed, stream, ...} ignores the stream word,
        // which made x[0] equal dY[0], and is near zero for small seeds
        UniformRandomProvider rng = Noise.generator(seed, 0, TENSOR_STREAM + stream);
        ZigguratSampler.NormalizedGaussian normal = ZigguratSampler.NormalizedGaussian.of(rng);
        float[] v = new float[rows * cols];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (scale * normal.sample());
        }
        return Tensor.of(v, rows, cols);
    }

    /** A short name of the router, e.g. {@code token-choice k=2 RENORMALIZE/BEFORE_CAPACITY}. */
    public static String describeRouter(MoeConfig c) {
        if (c.router() instanceof TokenChoiceRouterConfig t) {
            return "token-choice k=" + t.k() + " " + t.gates() + (t.gates() == io.github.moe4j.api.GateNormalization.RENORMALIZE
                    ? "/" + t.renormTiming() : "") + (t.secondExpertPolicy().kind() == io.github.moe4j.api.SecondExpertPolicy.Kind.RANDOM
                    ? " second=RANDOM(" + t.secondExpertPolicy().threshold() + ")" : "")
                    + (t.jitter() > 0 ? " jitter=" + t.jitter() + "/" + t.jitterTarget() : "");
        }
        if (c.router() instanceof NoisyTopKRouterConfig n) {
            return "noisy-top-k k=" + n.k() + " noise=" + n.noise() + " eps0=" + n.noiseEpsilon();
        }
        return "expert-choice";
    }

    /** The configuration in one readable line. */
    public static String describe(MoeConfig c) {
        return "d=" + c.modelDim() + " h=" + c.hiddenDim() + " E=" + c.experts() + " " + c.activation() + ", "
                + describeRouter(c) + ", capacity=" + c.capacity() + ", priority=" + c.priority() + ", losses=" + c.losses()
                + ", routerBias=" + c.routerBias() + ", expertBias=" + c.expertBias() + ", padding=" + c.padding()
                + (c.router() instanceof ExpertChoiceRouterConfig ? "" : "");
    }

    @Override
    public String toString() {
        return "MoeCase[" + describe(config) + "; from " + origin + "; T=" + tokens() + " (G=" + groups + " x "
                + tokensPerGroup + ")" + (padding == null ? "" : ", mask=" + mask()) + ", " + mode
                + (mode == Mode.TRAINING ? " noiseSeed=" + noiseSeed + " step=" + step : "") + ", router=" + routerInit
                + ", weightSeed=" + weightSeed + ", input N(0, " + inputScale + "^2) seed=" + inputSeed + "]";
    }

    private String mask() {
        StringBuilder sb = new StringBuilder();
        for (boolean b : padding) {
            sb.append(b ? '1' : '0');
        }
        return sb.toString();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof MoeCase m && toString().equals(m.toString()) && Arrays.equals(padding, m.padding);
    }

    @Override
    public int hashCode() {
        return toString().hashCode();
    }
}

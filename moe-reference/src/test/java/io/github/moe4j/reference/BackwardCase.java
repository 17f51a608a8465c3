package io.github.moe4j.reference;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.AuxNormalization;
import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.CapacityBase;
import io.github.moe4j.api.ExpertChoiceRouterConfig;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.GateNormalization;
import io.github.moe4j.api.LossWeights;
import io.github.moe4j.api.Mode;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.Noise;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.PaddingPolicy;
import io.github.moe4j.api.Priority;
import io.github.moe4j.api.RenormTiming;
import io.github.moe4j.api.RouterConfig;
import io.github.moe4j.api.RouterNoise;
import io.github.moe4j.api.Rounding;
import io.github.moe4j.api.SecondExpertPolicy;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.util.SplittableRandom;

/**
 * One small layer with everything a gradient check needs: configuration, double weights, input,
 * upstream gradient and forward options whose noise is fixed (supplied with
 * {@link ForwardOptions#withNoise}, so a perturbed forward sees the same noise).
 *
 * @param config  the layer
 * @param weights its weights in double
 * @param x       [T, d]
 * @param tokens  T
 * @param options mode, groups, padding and the fixed noise
 * @param dY      [T, d] the upstream gradient of the output
 */
record BackwardCase(MoeConfig config, ReferenceWeights weights, double[] x, int tokens, ForwardOptions options, double[] dY) {

    /** Which router family a case uses. */
    enum RouterKind { TOKEN_CHOICE, NOISY_TOP_K, EXPERT_CHOICE }

    /** Which capacity a case uses. */
    enum CapacityKind { DROPLESS, FACTOR, FIXED }

    /** The layer over this case's weights. */
    ReferenceLayer layer() {
        return new ReferenceLayer(config, weights);
    }

    /** The forward at this case's point. */
    ReferenceForward forward() {
        return layer().forward(x, tokens, options);
    }

    /** \( L = \sum dY \odot y + \) the weighted losses, for other weights and input. */
    double loss(ReferenceWeights w, double[] input) {
        ReferenceForward f = new ReferenceLayer(config, w).forward(input, tokens, options);
        double sum = 0;
        for (int i = 0; i < dY.length; i++) {
            sum += dY[i] * f.y()[i];
        }
        return sum + f.losses().total();
    }

    /** \( L = \sum dG \odot g + \) the weighted losses, g the combine weights, for other weights and input. */
    double gateLoss(ReferenceWeights w, double[] input, double[] dGate) {
        ReferenceForward f = new ReferenceLayer(config, w).forward(input, tokens, options);
        double sum = 0;
        for (int i = 0; i < dGate.length; i++) {
            sum += dGate[i] * f.plan().gate()[i];
        }
        return sum + f.losses().total();
    }

    /** A random [T, m] upstream gradient of the combine weights, nonzero everywhere (also where dropped). */
    double[] randomGateGradient(long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        return gaussian(rnd, tokens * config.choicesPerToken(), 1);
    }

    /**
     * This case with another configuration of the same sizes, gating, expert kind and biases (the
     * weights, input and dY are kept), its noise drawn afresh for the new configuration.
     */
    BackwardCase with(MoeConfig other) {
        ForwardOptions o = new ForwardOptions(options.mode(), options.seed(), options.step(), options.groups(),
                options.paddingMask(), null);
        if (o.mode() == Mode.TRAINING) {
            o = o.withNoise(noise(other, tokens, new SplittableRandom(o.seed())));
        }
        return new BackwardCase(other, weights, x, tokens, o, dY);
    }

    /** The router family of this case. */
    RouterKind routerKind() {
        RouterConfig r = config.router();
        return r instanceof TokenChoiceRouterConfig ? RouterKind.TOKEN_CHOICE
                : r instanceof NoisyTopKRouterConfig ? RouterKind.NOISY_TOP_K : RouterKind.EXPERT_CHOICE;
    }

    @Override
    public String toString() {
        return "BackwardCase[T=" + tokens + ", " + config + ", mode=" + options.mode() + ", groups=" + options.groups()
                + ", padding=" + (options.paddingMask() == null ? "none" : options.paddingMask()) + "]";
    }

    /**
     * A random case, a deterministic function of its arguments.
     *
     * @param kind     the router family
     * @param capacity the capacity family (expert choice never gets DROPLESS)
     * @param priority the priority
     * @param act      the expert kind
     * @param seed     everything else: sizes, options, weights, input, noise, dY, loss coefficients
     */
    static BackwardCase random(RouterKind kind, CapacityKind capacity, Priority priority, Activation act, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        int experts = 1 + rnd.nextInt(4);
        int d = 1 + rnd.nextInt(4);
        int h = 1 + rnd.nextInt(4);
        int tokens = 1 + rnd.nextInt(6);
        int k = experts >= 2 && rnd.nextInt(3) == 0 ? 2 : 1 + rnd.nextInt(experts); // k = 2 more often: GShard's policy
        RouterConfig router;
        switch (kind) {
            case TOKEN_CHOICE: {
                GateNormalization gates = rnd.nextBoolean() ? GateNormalization.NONE : GateNormalization.RENORMALIZE;
                RenormTiming timing = rnd.nextBoolean() ? RenormTiming.BEFORE_CAPACITY : RenormTiming.AFTER_CAPACITY;
                SecondExpertPolicy policy = k == 2 && gates == GateNormalization.RENORMALIZE && rnd.nextBoolean()
                        ? SecondExpertPolicy.random(0.2 + 0.8 * rnd.nextDouble()) : SecondExpertPolicy.ALL;
                double jitter = rnd.nextInt(3) == 0 ? 0 : 0.2;
                TokenChoiceRouterConfig.JitterTarget target = rnd.nextBoolean()
                        ? TokenChoiceRouterConfig.JitterTarget.ROUTER_ONLY : TokenChoiceRouterConfig.JitterTarget.ROUTER_AND_EXPERTS;
                router = new TokenChoiceRouterConfig(k, gates, timing, policy, jitter, target);
                break;
            }
            case NOISY_TOP_K:
                router = new NoisyTopKRouterConfig(k, rnd.nextInt(4) == 0 ? NoisyTopKRouterConfig.Noise.NONE
                        : NoisyTopKRouterConfig.Noise.LEARNED, NoisyTopKRouterConfig.DEFAULT_NOISE_EPSILON);
                break;
            default:
                router = new ExpertChoiceRouterConfig();
        }
        CapacityKind ck = kind == RouterKind.EXPERT_CHOICE && capacity == CapacityKind.DROPLESS ? CapacityKind.FACTOR : capacity;
        Capacity cap = switch (ck) {
            case DROPLESS -> Capacity.dropless();
            case FACTOR -> Capacity.factor(new double[] {0.5, 1, 1.25, 2}[rnd.nextInt(4)],
                    rnd.nextBoolean() ? CapacityBase.TOKENS : CapacityBase.ASSIGNMENTS, Rounding.values()[rnd.nextInt(3)],
                    rnd.nextInt(3));
            case FIXED -> Capacity.fixed(1 + rnd.nextInt(tokens));
        };
        boolean learnedNoise = router instanceof NoisyTopKRouterConfig n && n.noise() == NoisyTopKRouterConfig.Noise.LEARNED;
        LossWeights losses = new LossWeights(
                kind == RouterKind.TOKEN_CHOICE ? 0.1 + rnd.nextDouble() : 0,
                AuxNormalization.values()[rnd.nextInt(3)],
                0.05 + 0.5 * rnd.nextDouble(),
                kind == RouterKind.NOISY_TOP_K ? 0.1 + rnd.nextDouble() : 0,
                kind == RouterKind.NOISY_TOP_K ? 0.1 + rnd.nextDouble() : 0);
        MoeConfig config = MoeConfig.builder().modelDim(d).hiddenDim(h).experts(experts).activation(act).router(router)
                .capacity(cap).priority(priority).losses(losses).routerBias(!learnedNoise && rnd.nextBoolean())
                .expertBias(rnd.nextBoolean()).padding(rnd.nextBoolean() ? PaddingPolicy.ROUTED : PaddingPolicy.NOT_ROUTED)
                .build();

        ReferenceWeights w = new ReferenceWeights(d, h, experts,
                gaussian(rnd, d * experts, 1.5 / Math.sqrt(d)),
                config.routerBias() ? gaussian(rnd, experts, 0.3) : null,
                learnedNoise ? gaussian(rnd, d * experts, 1 / Math.sqrt(d)) : null,
                gaussian(rnd, experts * d * h, 1 / Math.sqrt(d)),
                act.isGated() ? gaussian(rnd, experts * d * h, 1 / Math.sqrt(d)) : null,
                gaussian(rnd, experts * h * d, 1 / Math.sqrt(h)),
                config.expertBias() ? gaussian(rnd, experts * h, 0.3) : null,
                config.expertBias() ? gaussian(rnd, experts * d, 0.3) : null);
        double[] x = gaussian(rnd, tokens * d, 1);
        double[] dY = gaussian(rnd, tokens * d, 1);

        int groups = 1;
        for (int g = 3; g >= 2; g--) {
            if (tokens % g == 0 && rnd.nextInt(3) == 0) {
                groups = g;
                break;
            }
        }
        Mode mode = rnd.nextInt(5) == 0 ? Mode.INFERENCE : Mode.TRAINING;
        ForwardOptions options = new ForwardOptions(mode, rnd.nextLong(), rnd.nextInt(100), groups, null, null);
        if (rnd.nextInt(3) == 0) {
            float[] mask = new float[tokens];
            for (int t = 0; t < tokens; t++) {
                mask[t] = rnd.nextInt(4) == 0 ? 0 : 1;
            }
            options = options.withPaddingMask(Tensor.of(mask, tokens));
        }
        if (mode == Mode.TRAINING) {
            options = options.withNoise(noise(config, tokens, rnd));
        }
        return new BackwardCase(config, w, x, tokens, options, dY);
    }

    /**
     * Noise for a training call, drawn here rather than by {@link Noise} so that the cases do not
     * depend on how moe-api seeds its streams: jitter multipliers uniform in [1 − ε, 1 + ε),
     * standard normal logit noise, second-expert uniforms in [0, 1).
     */
    static RouterNoise noise(MoeConfig config, int tokens, SplittableRandom rnd) {
        Tensor jitter = null;
        if (config.router() instanceof TokenChoiceRouterConfig tc && tc.jitter() > 0) {
            float[] u = new float[tokens * config.modelDim()];
            for (int i = 0; i < u.length; i++) {
                u[i] = (float) (1 - tc.jitter() + 2 * tc.jitter() * rnd.nextDouble());
            }
            jitter = Tensor.of(u, tokens, config.modelDim());
        }
        Tensor logitNoise = null;
        if (config.router() instanceof NoisyTopKRouterConfig n && n.noise() == NoisyTopKRouterConfig.Noise.LEARNED) {
            float[] eps = new float[tokens * config.experts()];
            for (int i = 0; i < eps.length; i++) {
                eps[i] = (float) rnd.nextGaussian();
            }
            logitNoise = Tensor.of(eps, tokens, config.experts());
        }
        Tensor uniforms = null;
        if (config.router() instanceof TokenChoiceRouterConfig tc && tc.secondExpertPolicy().kind() == SecondExpertPolicy.Kind.RANDOM) {
            float[] u = new float[tokens];
            for (int t = 0; t < tokens; t++) {
                u[t] = Math.min((float) rnd.nextDouble(), Math.nextDown(1f));
            }
            uniforms = Tensor.of(u, tokens);
        }
        return new RouterNoise(jitter, logitNoise, uniforms);
    }

    private static double[] gaussian(SplittableRandom rnd, int n, double std) {
        double[] a = new double[n];
        for (int i = 0; i < n; i++) {
            a[i] = std * rnd.nextGaussian();
        }
        return a;
    }
}

package io.github.moe4j.opencl;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.AuxNormalization;
import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.CapacityBase;
import io.github.moe4j.api.ExpertChoiceRouterConfig;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.GateNormalization;
import io.github.moe4j.api.LossWeights;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.PaddingPolicy;
import io.github.moe4j.api.Priority;
import io.github.moe4j.api.RenormTiming;
import io.github.moe4j.api.Rounding;
import io.github.moe4j.api.SecondExpertPolicy;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.util.SplittableRandom;

/**
 * One random token-choice case: a configuration drawn over every option the OpenCL backend
 * supports, weights, an input and forward options, all a function of the seed. Dims include 1 and
 * sizes one past a tile edge ({@value MoeLayerKernel#TILE}); one case in eight duplicates a router
 * column, so two experts tie exactly and the tie rule (lower index) is exercised.
 */
record MoeCase(long seed, MoeConfig config, MoeWeights weights, Tensor input, ForwardOptions options, boolean exactTie) {

    private static final int[] DIMS = {1, 3, 8, 16, 17, 33};

    static MoeCase random(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int experts = 1 + r.nextInt(6);
        int k = 1 + r.nextInt(Math.min(experts, 3));
        int d = DIMS[r.nextInt(DIMS.length)];
        int h = DIMS[r.nextInt(DIMS.length)];
        int groups = 1 + r.nextInt(3);
        int tokens = groups * (1 + r.nextInt(8));
        Activation activation = Activation.values()[r.nextInt(Activation.values().length)];
        GateNormalization gates = r.nextBoolean() ? GateNormalization.NONE : GateNormalization.RENORMALIZE;
        RenormTiming timing = r.nextBoolean() ? RenormTiming.BEFORE_CAPACITY : RenormTiming.AFTER_CAPACITY;
        TokenChoiceRouterConfig router = TokenChoiceRouterConfig.topK(k).withGates(gates).withRenormTiming(timing);
        boolean training = r.nextBoolean();
        if (training && r.nextInt(3) == 0) {
            router = router.withJitter(0.05, r.nextBoolean() ? TokenChoiceRouterConfig.JitterTarget.ROUTER_ONLY
                    : TokenChoiceRouterConfig.JitterTarget.ROUTER_AND_EXPERTS);
        }
        if (training && k == 2 && gates == GateNormalization.RENORMALIZE && r.nextInt(3) == 0) {
            router = router.withSecondExpertPolicy(SecondExpertPolicy.random(0.2 + 0.6 * r.nextDouble()));
        }
        Capacity capacity;
        switch (r.nextInt(3)) {
            case 0:
                capacity = Capacity.dropless();
                break;
            case 1:
                capacity = Capacity.factor(new double[] {0.5, 1.0, 1.25, 2.0}[r.nextInt(4)],
                        CapacityBase.values()[r.nextInt(2)], Rounding.values()[r.nextInt(Rounding.values().length)], r.nextInt(3));
                break;
            default:
                capacity = Capacity.fixed(r.nextInt(5));
        }
        LossWeights losses = LossWeights.of().aux(r.nextBoolean() ? 0.01 : 0,
                AuxNormalization.values()[r.nextInt(AuxNormalization.values().length)]).z(r.nextBoolean() ? 0.001 : 0);
        MoeConfig config = MoeConfig.builder().modelDim(d).hiddenDim(h).experts(experts).activation(activation).router(router)
                .capacity(capacity).priority(Priority.values()[r.nextInt(Priority.values().length)]).losses(losses)
                .routerBias(r.nextBoolean()).expertBias(r.nextBoolean())
                .padding(r.nextBoolean() ? PaddingPolicy.ROUTED : PaddingPolicy.NOT_ROUTED).build();
        MoeWeights weights = MoeWeights.random(config, r.nextLong());
        boolean tie = experts > 1 && r.nextInt(8) == 0;
        if (tie) {
            weights = duplicateRouterColumn(config, weights, r.nextInt(experts - 1));
        }
        double scale = r.nextBoolean() ? 1 : 3;
        float[] x = new float[tokens * d];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (scale * gaussian(r));
        }
        ForwardOptions options = (training ? ForwardOptions.training(r.nextLong(), r.nextInt(100)) : ForwardOptions.inference())
                .withGroups(groups);
        if (r.nextInt(3) == 0) {
            float[] mask = new float[tokens];
            for (int t = 0; t < tokens; t++) {
                mask[t] = r.nextInt(4) == 0 ? 0f : 1f;
            }
            options = options.withPaddingMask(Tensor.of(mask, tokens));
        }
        return new MoeCase(seed, config, weights, Tensor.of(x, tokens, d), options, tie);
    }

    /**
     * One random noisy top-k case (SPEC §6): learned noise (three in four) or none, k up to E (so
     * both the smooth and the counted load occur), importance, load and z losses on or off, and the
     * same spread of capacities, priorities, groups, padding and experts as {@link #random}.
     */
    static MoeCase randomNoisy(long seed) {
        MoeCase base = random(seed);
        SplittableRandom r = new SplittableRandom(~seed);
        MoeConfig b = base.config();
        int k = 1 + r.nextInt(Math.min(b.experts(), 3));
        NoisyTopKRouterConfig router = new NoisyTopKRouterConfig(k, r.nextInt(4) == 0 ? NoisyTopKRouterConfig.Noise.NONE
                : NoisyTopKRouterConfig.Noise.LEARNED, NoisyTopKRouterConfig.DEFAULT_NOISE_EPSILON);
        LossWeights losses = LossWeights.of().importance(r.nextInt(4) == 0 ? 0 : 0.01).load(r.nextInt(4) == 0 ? 0 : 0.01)
                .z(r.nextBoolean() ? 0.001 : 0);
        MoeConfig config = MoeConfig.builder().modelDim(b.modelDim()).hiddenDim(b.hiddenDim()).experts(b.experts())
                .activation(b.activation()).router(router).capacity(b.capacity()).priority(b.priority()).losses(losses)
                .routerBias(false).expertBias(b.expertBias()).padding(b.padding()).build();
        MoeWeights weights = MoeWeights.random(config, r.nextLong());
        ForwardOptions options = (r.nextInt(4) == 0 ? ForwardOptions.inference() : ForwardOptions.training(r.nextLong(), r.nextInt(100)))
                .withGroups(base.options().groups());
        if (base.options().paddingMask() != null) {
            options = options.withPaddingMask(base.options().paddingMask());
        }
        return new MoeCase(seed, config, weights, base.input(), options, false);
    }

    /**
     * One random expert-choice case (SPEC §7): C from a capacity factor (some rounding to more than
     * the group, some to one token), z loss on or off, and {@link #random}'s spread of experts,
     * dims, activations, biases, groups and padding.
     */
    static MoeCase randomExpertChoice(long seed) {
        MoeCase base = random(seed);
        SplittableRandom r = new SplittableRandom(~seed ^ 0xec);
        MoeConfig b = base.config();
        Capacity capacity = Capacity.factor(new double[] {0.25, 0.5, 1.0, 2.0, 8.0}[r.nextInt(5)], CapacityBase.TOKENS,
                Rounding.values()[r.nextInt(Rounding.values().length)], 1);
        MoeConfig config = MoeConfig.builder().modelDim(b.modelDim()).hiddenDim(b.hiddenDim()).experts(b.experts())
                .activation(b.activation()).router(new ExpertChoiceRouterConfig()).capacity(capacity)
                .losses(LossWeights.of().z(r.nextBoolean() ? 0.001 : 0)).routerBias(b.routerBias()).expertBias(b.expertBias())
                .padding(b.padding()).build();
        MoeWeights weights = MoeWeights.random(config, r.nextLong());
        return new MoeCase(seed, config, weights, base.input(), base.options(), false);
    }

    /** Router column e+1 := column e (and the bias), so experts e and e+1 tie exactly. */
    private static MoeWeights duplicateRouterColumn(MoeConfig c, MoeWeights w, int e) {
        int d = c.modelDim();
        int experts = c.experts();
        float[] router = w.router().toArray();
        for (int j = 0; j < d; j++) {
            router[j * experts + e + 1] = router[j * experts + e];
        }
        Tensor bias = w.routerBias();
        if (bias != null) {
            float[] b = bias.toArray();
            b[e + 1] = b[e];
            bias = Tensor.of(b, experts);
        }
        return MoeWeights.builder().router(Tensor.of(router, d, experts)).routerBias(bias).noiseRouter(w.noiseRouter())
                .wIn(w.wIn()).wGate(w.wGate()).wOut(w.wOut()).bIn(w.bIn()).bOut(w.bOut()).build();
    }

    private static double gaussian(SplittableRandom r) {
        double u = r.nextDouble();
        double v = r.nextDouble();
        return Math.sqrt(-2 * Math.log1p(-u)) * Math.cos(2 * Math.PI * v);
    }

    @Override
    public String toString() {
        return "case seed " + seed + ": T=" + input.dim(0) + ", " + config + ", options " + options.mode() + " G=" + options.groups()
                + (options.paddingMask() != null ? " with padding" : "") + (exactTie ? ", exact router tie" : "");
    }
}

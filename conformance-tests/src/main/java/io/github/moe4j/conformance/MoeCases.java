package io.github.moe4j.conformance;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.AuxNormalization;
import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.CapacityBase;
import io.github.moe4j.api.ExpertChoiceRouterConfig;
import io.github.moe4j.api.GateNormalization;
import io.github.moe4j.api.LossWeights;
import io.github.moe4j.api.Mode;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.PaddingPolicy;
import io.github.moe4j.api.Presets;
import io.github.moe4j.api.Priority;
import io.github.moe4j.api.RenormTiming;
import io.github.moe4j.api.Rounding;
import io.github.moe4j.api.RouterConfig;
import io.github.moe4j.api.SecondExpertPolicy;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ArbitrarySupplier;
import net.jqwik.api.Combinators;
import net.jqwik.api.Tuple;

/**
 * The generators of the suite (STYLE §19): one domain, independent parts combined with
 * {@link Combinators}, and {@code flatMap} only for the real dependencies (k ≤ E; the capacity
 * depends on the router, since expert choice cannot be dropless; the padding mask has T entries).
 * Every size and choice is a jqwik arbitrary, so a failing case shrinks to small sizes and plain
 * options; only weights, inputs and noise come from seeds.
 *
 * <p>{@link #all()} covers every router (token choice NONE and RENORMALIZE before and after
 * capacity, GShard's RANDOM second expert, jitter to the router or to the experts too; noisy top-k
 * with learned noise or none; expert choice), every capacity mode (dropless; factor × base ×
 * rounding × minimum; fixed), every priority and activation, every {@link Presets} method, biases,
 * padding policy and mask, routing groups, inference and training, tied logits and large logits.
 * {@link #builder()} narrows it for one property.
 */
public final class MoeCases {
    private MoeCases() {}

    /** Every kind of case. */
    public static Arbitrary<MoeCase> all() {
        return builder().build();
    }

    /** A builder starting from {@link #all()}. */
    public static Builder builder() {
        return new Builder();
    }

    /** The router families. */
    public enum RouterFamily {
        /** {@link TokenChoiceRouterConfig}. */
        TOKEN_CHOICE,
        /** {@link NoisyTopKRouterConfig}. */
        NOISY_TOP_K,
        /** {@link ExpertChoiceRouterConfig}. */
        EXPERT_CHOICE
    }

    /** The {@link Presets} methods. */
    public enum Preset {
        /** {@link Presets#switchTop1()}. */
        SWITCH_TOP1(1),
        /** {@link Presets#gshardTop2()}. */
        GSHARD_TOP2(2),
        /** {@link Presets#stMoe()}. */
        ST_MOE(2),
        /** {@link Presets#mixtral()}. */
        MIXTRAL(2),
        /** {@link Presets#deepSpeedTop1()}. */
        DEEPSPEED_TOP1(1),
        /** {@link Presets#deepSpeedTop2()}. */
        DEEPSPEED_TOP2(2),
        /** {@link Presets#deepSpeedTopK(int)}. */
        DEEPSPEED_TOPK(1),
        /** {@link Presets#shazeerNoisyTopK(int)}. */
        SHAZEER_NOISY_TOPK(1),
        /** {@link Presets#expertChoice(double)}. */
        EXPERT_CHOICE(1);

        private final int minExperts;

        Preset(int minExperts) {
            this.minExperts = minExperts;
        }

        /** The builder for E experts and k (ignored where the preset fixes k) or capacity factor. */
        MoeConfig.Builder builder(int k, double capacityFactor) {
            return switch (this) {
                case SWITCH_TOP1 -> Presets.switchTop1();
                case GSHARD_TOP2 -> Presets.gshardTop2();
                case ST_MOE -> Presets.stMoe();
                case MIXTRAL -> Presets.mixtral();
                case DEEPSPEED_TOP1 -> Presets.deepSpeedTop1();
                case DEEPSPEED_TOP2 -> Presets.deepSpeedTop2();
                case DEEPSPEED_TOPK -> Presets.deepSpeedTopK(k);
                case SHAZEER_NOISY_TOPK -> Presets.shazeerNoisyTopK(k);
                case EXPERT_CHOICE -> Presets.expertChoice(capacityFactor);
            };
        }

        /** The preset as it is called. */
        String call(int k, double capacityFactor) {
            return switch (this) {
                case DEEPSPEED_TOPK -> "Presets.deepSpeedTopK(" + k + ")";
                case SHAZEER_NOISY_TOPK -> "Presets.shazeerNoisyTopK(" + k + ")";
                case EXPERT_CHOICE -> "Presets.expertChoice(" + capacityFactor + ")";
                default -> "Presets." + camel(name()) + "()";
            };
        }

        private static String camel(String s) {
            StringBuilder sb = new StringBuilder();
            boolean up = false;
            for (char c : s.toLowerCase(java.util.Locale.ROOT).toCharArray()) {
                if (c == '_') {
                    up = true;
                } else {
                    sb.append(up ? Character.toUpperCase(c) : c);
                    up = false;
                }
            }
            return sb.toString().replace("Topk", "TopK").replace("deepspeed", "deepSpeed").replace("gshard", "gshard")
                    .replace("stMoe", "stMoe");
        }
    }

    /** Narrows {@link #all()}; every setter replaces one part's arbitrary. */
    public static final class Builder {
        private Arbitrary<Integer> experts = Arbitraries.frequencyOf(Tuple.of(1, Arbitraries.just(1)),
                Tuple.of(6, Arbitraries.integers().between(2, 6)));
        private Function<Integer, Arbitrary<RouterConfig>> routers = MoeCases::routers;
        private Function<RouterConfig, Arbitrary<Capacity>> capacities = MoeCases::capacities;
        private Arbitrary<Integer> groups = Arbitraries.integers().between(1, 3);
        private Arbitrary<Integer> tokensPerGroup = Arbitraries.frequencyOf(
                Tuple.of(12, Arbitraries.integers().between(1, 6)), Tuple.of(1, Arbitraries.just(0)));
        private Arbitrary<Mode> modes = Arbitraries.of(Mode.class);
        private Arbitrary<MoeCase.RouterInit> inits = Arbitraries.frequencyOf(
                Tuple.of(6, Arbitraries.just(MoeCase.RouterInit.RANDOM)), Tuple.of(1, Arbitraries.just(MoeCase.RouterInit.TIED)));
        private Arbitrary<Boolean> masks = Arbitraries.frequencyOf(Tuple.of(3, Arbitraries.just(false)), Tuple.of(1, Arbitraries.just(true)));
        private Arbitrary<LossWeights> losses = MoeCases.losses();
        private Arbitrary<Double> inputScales = Arbitraries.frequencyOf(Tuple.of(4, Arbitraries.just(1.0)),
                Tuple.of(1, Arbitraries.just(0.25)), Tuple.of(1, Arbitraries.just(4.0)), Tuple.of(1, Arbitraries.just(30.0)));
        private int presetWeight = 1;
        private int composedWeight = 4;

        Builder() {}

        /** The number of experts. */
        public Builder experts(Arbitrary<Integer> e) {
            this.experts = e;
            return this;
        }

        /** The router, given E. */
        public Builder routers(Function<Integer, Arbitrary<RouterConfig>> r) {
            this.routers = r;
            return this;
        }

        /** The capacity, given the router. */
        public Builder capacities(Function<RouterConfig, Arbitrary<Capacity>> c) {
            this.capacities = c;
            return this;
        }

        /** The number of routing groups. */
        public Builder groups(Arbitrary<Integer> g) {
            this.groups = g;
            return this;
        }

        /** Tokens per group. */
        public Builder tokensPerGroup(Arbitrary<Integer> t) {
            this.tokensPerGroup = t;
            return this;
        }

        /** Inference or training. */
        public Builder modes(Arbitrary<Mode> m) {
            this.modes = m;
            return this;
        }

        /** Random or tied router weights. */
        public Builder routerInits(Arbitrary<MoeCase.RouterInit> i) {
            this.inits = i;
            return this;
        }

        /** Whether a padding mask is given. */
        public Builder masks(Arbitrary<Boolean> m) {
            this.masks = m;
            return this;
        }

        /** The loss coefficients (those a router does not define are set to 0). */
        public Builder losses(Arbitrary<LossWeights> l) {
            this.losses = l;
            return this;
        }

        /** The input's standard deviation. */
        public Builder inputScales(Arbitrary<Double> s) {
            this.inputScales = s;
            return this;
        }

        /** No presets: every case is composed from the parts. */
        public Builder composedOnly() {
            this.presetWeight = 0;
            this.composedWeight = 1;
            return this;
        }

        /** The cases. */
        public Arbitrary<MoeCase> build() {
            Arbitrary<Tuple.Tuple2<MoeConfig, String>> configs = experts.flatMap(e -> {
                Arbitrary<Tuple.Tuple2<MoeConfig, String>> composed = composed(e);
                if (presetWeight == 0) {
                    return composed;
                }
                return Arbitraries.frequencyOf(Tuple.of(composedWeight, composed), Tuple.of(presetWeight, presets(e)));
            });
            Arbitrary<Tuple.Tuple4<Long, Long, Long, Long>> seeds = Combinators.combine(Arbitraries.longs(), Arbitraries.longs(),
                    Arbitraries.longs(), Arbitraries.longs().between(0, 3)).as(Tuple::of);
            Arbitrary<Tuple.Tuple3<Integer, Integer, boolean[]>> layouts = Combinators.combine(groups, tokensPerGroup, masks)
                    .flatAs((g, n, masked) -> masked ? mask(g * n).map(m -> Tuple.of(g, n, m)) : Arbitraries.just(Tuple.of(g, n, (boolean[]) null)));
            return Combinators.combine(configs, layouts, modes, inits, inputScales, seeds)
                    .as((config, layout, mode, init, scale, seed) -> new MoeCase(config.get1(), config.get2(), init,
                            seed.get1(), layout.get1(), layout.get2(), layout.get3(), mode, seed.get3(), seed.get4(), scale,
                            seed.get2()))
                    // jqwik's edge cases combine the first and last value of every part, and with this many
                    // parts they would crowd out random generation (RANK_MAJOR, NONE gates, ...); the edge
                    // sizes (E = 1, k = E, T = 0 and 1) are generated by their own frequencies instead
                    .withoutEdgeCases();
        }

        private Arbitrary<Tuple.Tuple2<MoeConfig, String>> composed(int e) {
            Arbitrary<Tuple.Tuple2<RouterConfig, Capacity>> routing = routers.apply(e)
                    .flatMap(r -> capacities.apply(r).map(c -> Tuple.of(r, c)));
            Arbitrary<Integer> dims = Arbitraries.frequencyOf(Tuple.of(8, Arbitraries.integers().between(1, 8)),
                    Tuple.of(1, Arbitraries.of(16, 17, 33)));
            Arbitrary<Tuple.Tuple4<Integer, Integer, Activation, Priority>> shape = Combinators.combine(dims, dims,
                    Arbitraries.of(Activation.class), Arbitraries.of(Priority.class)).as(Tuple::of);
            Arbitrary<Tuple.Tuple3<Boolean, Boolean, PaddingPolicy>> extras = Combinators.combine(Arbitraries.of(false, true),
                    Arbitraries.of(false, true), Arbitraries.of(PaddingPolicy.class)).as(Tuple::of);
            return Combinators.combine(routing, shape, extras, losses).as((rc, s, x, l) -> {
                RouterConfig r = rc.get1();
                boolean learned = r instanceof NoisyTopKRouterConfig n && n.noise() == NoisyTopKRouterConfig.Noise.LEARNED;
                MoeConfig config = MoeConfig.builder().modelDim(s.get1()).hiddenDim(s.get2()).experts(e).activation(s.get3())
                        .router(r).capacity(rc.get2()).priority(s.get4()).losses(applicable(l, r))
                        .routerBias(x.get1() && !learned).expertBias(x.get2()).padding(x.get3()).build();
                return Tuple.of(config, "composed");
            });
        }
    }

    // ---------------------------------------------------------------------------------------------
    // parts

    /** Every router for E experts: token choice (most often), noisy top-k and expert choice. */
    public static Arbitrary<RouterConfig> routers(int experts) {
        return Arbitraries.frequencyOf(Tuple.of(5, tokenChoice(experts)), Tuple.of(2, noisyTopK(experts)),
                Tuple.of(2, Arbitraries.just(new ExpertChoiceRouterConfig())));
    }

    /** Token choice with k in [1, E]: gates, renormalisation timing, GShard's RANDOM second expert (k = 2), jitter. */
    public static Arbitrary<RouterConfig> tokenChoice(int experts) {
        Arbitrary<Integer> k = Arbitraries.integers().between(1, experts);
        Arbitrary<Tuple.Tuple2<Double, TokenChoiceRouterConfig.JitterTarget>> jitter = Arbitraries.frequencyOf(
                Tuple.of(3, Arbitraries.just(Tuple.of(0.0, TokenChoiceRouterConfig.JitterTarget.ROUTER_ONLY))),
                Tuple.of(1, Combinators.combine(Arbitraries.of(0.01, 0.2), Arbitraries.of(TokenChoiceRouterConfig.JitterTarget.class)).as(Tuple::of)));
        return Combinators.combine(k, Arbitraries.of(GateNormalization.class), Arbitraries.of(RenormTiming.class),
                Arbitraries.of(false, true), jitter).as((kk, gates, timing, random, j) -> {
                    SecondExpertPolicy second = random && kk == 2 && gates == GateNormalization.RENORMALIZE
                            ? SecondExpertPolicy.random(0.2) : SecondExpertPolicy.ALL;
                    return new TokenChoiceRouterConfig(kk, gates, timing, second, j.get1(), j.get2());
                });
    }

    /** Token choice with k = E, no jitter, no random second expert. */
    public static Arbitrary<RouterConfig> tokenChoiceAllExperts(int experts) {
        return Arbitraries.of(GateNormalization.class).map(g -> TokenChoiceRouterConfig.topK(experts).withGates(g));
    }

    /** Noisy top-k with k in [1, E], learned noise or none. */
    public static Arbitrary<RouterConfig> noisyTopK(int experts) {
        return Combinators.combine(Arbitraries.integers().between(1, experts), Arbitraries.of(NoisyTopKRouterConfig.Noise.class))
                .as((k, noise) -> new NoisyTopKRouterConfig(k, noise, NoisyTopKRouterConfig.DEFAULT_NOISE_EPSILON));
    }

    /** Every capacity the router allows: dropless (not for expert choice), a factor, or a fixed C. */
    public static Arbitrary<Capacity> capacities(RouterConfig router) {
        Arbitrary<Integer> minimum = Arbitraries.frequencyOf(Tuple.of(3, Arbitraries.just(0)), Tuple.of(1, Arbitraries.just(1)),
                Tuple.of(1, Arbitraries.just(4)));
        Arbitrary<Capacity> factor = Combinators.combine(Arbitraries.of(1.0, 0.5, 1.25, 2.0), Arbitraries.of(CapacityBase.class),
                Arbitraries.of(Rounding.class), minimum).as(Capacity::factor);
        Arbitrary<Capacity> fixed = Arbitraries.integers().between(0, 6).map(Capacity::fixed);
        if (router instanceof ExpertChoiceRouterConfig) {
            return Arbitraries.oneOf(factor, fixed);
        }
        // limited capacities twice as often as dropless, so that drops (and partial drops) are common
        return Arbitraries.frequencyOf(Tuple.of(2, Arbitraries.just(Capacity.dropless())), Tuple.of(3, factor), Tuple.of(2, fixed));
    }

    /** Capacities that drop nothing. */
    public static Arbitrary<Capacity> dropless(RouterConfig router) {
        return Arbitraries.just(Capacity.dropless());
    }

    /** Loss coefficients: 0, small and 1, every f convention. */
    public static Arbitrary<LossWeights> losses() {
        Arbitrary<Double> coef = Arbitraries.of(0.0, 0.01, 1.0);
        return Combinators.combine(coef, Arbitraries.of(AuxNormalization.class), coef, coef, coef)
                .as(LossWeights::new);
    }

    /** Keeps the coefficients a router defines and sets the others to 0 (MoeConfig's rules). */
    public static LossWeights applicable(LossWeights l, RouterConfig r) {
        if (r instanceof TokenChoiceRouterConfig) {
            return new LossWeights(l.aux(), l.auxNormalization(), l.z(), 0, 0);
        }
        if (r instanceof NoisyTopKRouterConfig) {
            return new LossWeights(0, l.auxNormalization(), l.z(), l.importance(), l.load());
        }
        return new LossWeights(0, l.auxNormalization(), l.z(), 0, 0);
    }

    /** Every {@link Presets} method valid for E experts, with k in [1, E] where it takes one. */
    public static Arbitrary<Tuple.Tuple2<MoeConfig, String>> presets(int experts) {
        List<Preset> valid = new ArrayList<>();
        for (Preset p : Preset.values()) {
            if (experts >= p.minExperts) {
                valid.add(p);
            }
        }
        Arbitrary<Integer> dims = Arbitraries.integers().between(1, 8);
        return Combinators.combine(Arbitraries.of(valid), Arbitraries.integers().between(1, experts), Arbitraries.of(1.0, 0.5, 2.0),
                dims, dims).as((p, k, cf, d, h) -> Tuple.of(p.builder(k, cf).modelDim(d).hiddenDim(h).experts(experts).build(),
                        p.call(k, cf)));
    }

    /** A [n] padding mask, mostly real tokens. */
    private static Arbitrary<boolean[]> mask(int n) {
        return Arbitraries.frequencyOf(Tuple.of(3, Arbitraries.just(true)), Tuple.of(1, Arbitraries.just(false)))
                .list().ofSize(n).map(list -> {
                    boolean[] m = new boolean[n];
                    for (int i = 0; i < n; i++) {
                        m[i] = list.get(i);
                    }
                    return m;
                });
    }

    /** The router family of a configuration. */
    public static RouterFamily family(MoeConfig c) {
        if (c.router() instanceof TokenChoiceRouterConfig) {
            return RouterFamily.TOKEN_CHOICE;
        }
        return c.router() instanceof NoisyTopKRouterConfig ? RouterFamily.NOISY_TOP_K : RouterFamily.EXPERT_CHOICE;
    }

    // ---------------------------------------------------------------------------------------------
    // the suppliers the contracts name in @From

    /** {@link #all()}. */
    public static final class All implements ArbitrarySupplier<MoeCase> {
        @Override
        public Arbitrary<MoeCase> get() {
            return all();
        }
    }

    /** Tied logits (router weight zero), inference: only the tie rule decides the selection. */
    public static final class Tied implements ArbitrarySupplier<MoeCase> {
        @Override
        public Arbitrary<MoeCase> get() {
            return builder().routerInits(Arbitraries.just(MoeCase.RouterInit.TIED)).modes(Arbitraries.just(Mode.INFERENCE)).build();
        }
    }

    /** Token choice with k = E, nothing dropped, no padding mask: the layer is the dense softmax mixture. */
    public static final class AllExpertsDropless implements ArbitrarySupplier<MoeCase> {
        @Override
        public Arbitrary<MoeCase> get() {
            return builder().composedOnly().routers(MoeCases::tokenChoiceAllExperts).capacities(MoeCases::dropless)
                    .masks(Arbitraries.just(false)).build();
        }
    }

    /** Token choice or noisy top-k, nothing dropped, inference, one group: each token's output depends on that token only. */
    public static final class DroplessInference implements ArbitrarySupplier<MoeCase> {
        @Override
        public Arbitrary<MoeCase> get() {
            return builder().composedOnly()
                    .routers(e -> Arbitraries.oneOf(tokenChoice(e), noisyTopK(e))).capacities(MoeCases::dropless)
                    .modes(Arbitraries.just(Mode.INFERENCE)).groups(Arbitraries.just(1))
                    .tokensPerGroup(Arbitraries.integers().between(2, 8)).build();
        }
    }

    /** Token choice or noisy top-k with a fixed capacity that may drop. */
    public static final class FixedCapacity implements ArbitrarySupplier<MoeCase> {
        @Override
        public Arbitrary<MoeCase> get() {
            return builder().composedOnly().routers(e -> Arbitraries.oneOf(tokenChoice(e), noisyTopK(e)))
                    .capacities(r -> Arbitraries.integers().between(0, 4).map(Capacity::fixed)).build();
        }
    }

    /** Every router with all logits exactly 0 (router weight zero, no router bias), no padding, at least one token per group. */
    public static final class ZeroLogits implements ArbitrarySupplier<MoeCase> {
        @Override
        public Arbitrary<MoeCase> get() {
            return builder().composedOnly().routerInits(Arbitraries.just(MoeCase.RouterInit.TIED)).masks(Arbitraries.just(false))
                    .tokensPerGroup(Arbitraries.integers().between(1, 6)).build()
                    .map(c -> c.withConfig(c.config().toBuilder().routerBias(false).build()));
        }
    }

    /** One token. */
    public static final class OneToken implements ArbitrarySupplier<MoeCase> {
        @Override
        public Arbitrary<MoeCase> get() {
            return builder().groups(Arbitraries.just(1)).tokensPerGroup(Arbitraries.just(1)).build();
        }
    }

    /** No tokens. */
    public static final class NoTokens implements ArbitrarySupplier<MoeCase> {
        @Override
        public Arbitrary<MoeCase> get() {
            return builder().tokensPerGroup(Arbitraries.just(0)).build();
        }
    }

    /** One expert. */
    public static final class OneExpert implements ArbitrarySupplier<MoeCase> {
        @Override
        public Arbitrary<MoeCase> get() {
            return builder().experts(Arbitraries.just(1)).build();
        }
    }

    /** k = E for the token-choice routers, with any capacity. */
    public static final class AllExperts implements ArbitrarySupplier<MoeCase> {
        @Override
        public Arbitrary<MoeCase> get() {
            return builder().composedOnly().routers(e -> Arbitraries.oneOf(tokenChoiceAllExperts(e),
                    Arbitraries.of(NoisyTopKRouterConfig.Noise.class).map(n -> new NoisyTopKRouterConfig(e, n, NoisyTopKRouterConfig.DEFAULT_NOISE_EPSILON))))
                    .build();
        }
    }

    /** Every router with capacity fixed at 0. */
    public static final class ZeroCapacity implements ArbitrarySupplier<MoeCase> {
        @Override
        public Arbitrary<MoeCase> get() {
            return builder().composedOnly().capacities(r -> Arbitraries.just(Capacity.fixed(0))).build();
        }
    }

    /**
     * Token choice with k in [2, E], a fixed capacity of 1 to 3 per expert and 3 to 6 tokens per
     * group: most tokens lose some but not all of their choices, where gate normalisation before
     * and after capacity differ.
     */
    public static final class TokenChoiceWithDrops implements ArbitrarySupplier<MoeCase> {
        @Override
        public Arbitrary<MoeCase> get() {
            return builder().composedOnly().experts(Arbitraries.integers().between(2, 6))
                    .routers(e -> Combinators.combine(Arbitraries.integers().between(2, e), Arbitraries.of(GateNormalization.class),
                            Arbitraries.of(RenormTiming.class)).as((k, g, t) -> (RouterConfig) TokenChoiceRouterConfig.topK(k).withGates(g)
                            .withRenormTiming(t)))
                    .capacities(r -> Arbitraries.integers().between(1, 3).map(Capacity::fixed))
                    .tokensPerGroup(Arbitraries.integers().between(3, 6)).build();
        }
    }

    /**
     * Training with every kind of noise: jitter to the router only or to the experts too, GShard's
     * RANDOM second expert, noisy top-k's learned noise. Every backend must use the host-made
     * noise of {@link io.github.moe4j.api.Noise} exactly.
     */
    public static final class TrainingNoise implements ArbitrarySupplier<MoeCase> {
        @Override
        public Arbitrary<MoeCase> get() {
            return builder().composedOnly().experts(Arbitraries.integers().between(2, 6)).modes(Arbitraries.just(Mode.TRAINING))
                    .routers(e -> Arbitraries.oneOf(
                            Combinators.combine(Arbitraries.integers().between(1, e), Arbitraries.of(GateNormalization.class),
                                    Arbitraries.of(0.01, 0.2), Arbitraries.of(TokenChoiceRouterConfig.JitterTarget.class))
                                    .as((k, g, eps, target) -> (RouterConfig) TokenChoiceRouterConfig.topK(k).withGates(g).withJitter(eps, target)),
                            Arbitraries.just((RouterConfig) TokenChoiceRouterConfig.topK(2).withSecondExpertPolicy(SecondExpertPolicy.random(0.2))),
                            Arbitraries.integers().between(1, e).map(k -> (RouterConfig) NoisyTopKRouterConfig.of(k))))
                    .build();
        }
    }
}

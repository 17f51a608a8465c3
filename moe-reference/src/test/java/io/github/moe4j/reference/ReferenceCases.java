package io.github.moe4j.reference;

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
import io.github.moe4j.api.Priority;
import io.github.moe4j.api.RenormTiming;
import io.github.moe4j.api.Rounding;
import io.github.moe4j.api.RouterConfig;
import io.github.moe4j.api.SecondExpertPolicy;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.Tuple;
import net.jqwik.api.statistics.Statistics;

/**
 * The one generator domain of the reference's property tests (STYLE §19): configurations over every
 * router (token choice with both gate normalisations, both renormalisation timings, both
 * second-expert policies and jitter; noisy top-k with and without learned noise; expert choice),
 * every capacity mode (dropless; factor with each base, rounding and a minimum; fixed), every
 * priority and activation, router and expert biases on and off, at small sizes (T 0..12, d and h
 * 1..6, E 1..6, G dividing T), with exact logit ties, repeated and zero input rows, large logits,
 * padding masks, inference and training.
 *
 * <p>Independent parts are combined; {@code flatMap} is used only where one part constrains
 * another (k ≤ E, the capacity and losses a router allows, G | T, a mask of length T).
 */
final class ReferenceCases {
    static final int MAX_TOKENS = 12;
    static final int MAX_DIM = 6;
    static final int MAX_EXPERTS = 6;

    /** Capacity factors that are dyadic, so cf·T·k/E is exact in binary and in decimal. */
    static final Double[] FACTORS = {0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 8.0};

    private ReferenceCases() {}

    /** The three router families. */
    enum RouterKind {
        TOKEN_CHOICE, NOISY_TOP_K, EXPERT_CHOICE;

        static RouterKind of(RouterConfig r) {
            if (r instanceof TokenChoiceRouterConfig) {
                return TOKEN_CHOICE;
            }
            return r instanceof NoisyTopKRouterConfig ? NOISY_TOP_K : EXPERT_CHOICE;
        }
    }

    /** The three capacity modes. */
    enum CapacityKind {
        DROPLESS, FACTOR, FIXED;

        static CapacityKind of(Capacity c) {
            if (c instanceof Capacity.Dropless) {
                return DROPLESS;
            }
            return c instanceof Capacity.Factor ? FACTOR : FIXED;
        }
    }

    /** Router and expert biases. */
    private record Biases(boolean router, boolean expert) {}

    /** T, G and the padding mask. */
    private record Shape(int tokens, int groups, String padding) {}

    /** Mode, seed and step. */
    private record Call(Mode mode, long seed, long step) {}

    /** Input style and seed. */
    private record Inputs(MoeCase.InputStyle style, long seed) {}

    /** Cases with any of the given routers (all three if none is given). */
    static Arbitrary<MoeCase> cases(RouterKind... kinds) {
        return cases(kinds.length == 0 ? EnumSet.allOf(RouterKind.class) : EnumSet.of(kinds[0], kinds));
    }

    static Arbitrary<MoeCase> cases(Set<RouterKind> kinds) {
        return Combinators.combine(configs(kinds), shapes(), inputs(), calls(), Arbitraries.longs(),
                        Arbitraries.frequencyOf(Tuple.of(4, Arbitraries.just(1.0)), Tuple.of(1, Arbitraries.just(16.0))),
                        Arbitraries.frequencyOf(Tuple.of(4, Arbitraries.just(false)), Tuple.of(1, Arbitraries.just(true))))
                .as((config, shape, inputs, call, weightSeed, scale, tied) -> new MoeCase(config, weightSeed, scale, tied,
                        shape.tokens(), shape.groups(), inputs.style(), inputs.seed(), shape.padding(), call.mode(),
                        call.seed(), call.step()))
                // jqwik would otherwise inject the edge cases of every flatMapped part (a quarter of all
                // cases had T = 0); the edge cases we want come with stated frequencies instead
                .withoutEdgeCases();
    }

    /** Cases with a padding mask (possibly all real) and one group. */
    static Arbitrary<MoeCase> paddedCases(RouterKind... kinds) {
        return cases(kinds).flatMap(c -> Arbitraries.strings().withChars('0', '1').ofLength(c.tokens())
                .map(p -> c.withGroups(1).withPadding(p)));
    }

    static Arbitrary<MoeConfig> configs(Set<RouterKind> kinds) {
        return Arbitraries.integers().between(1, MAX_EXPERTS).flatMap(e -> routers(e, kinds).flatMap(router -> Combinators.combine(
                        capacities(router), Arbitraries.of(Priority.class), Arbitraries.of(Activation.class),
                        Arbitraries.integers().between(1, MAX_DIM), Arbitraries.integers().between(1, MAX_DIM),
                        biases(router), lossWeights(router), Arbitraries.of(PaddingPolicy.class))
                .as((capacity, priority, activation, d, h, biases, losses, padding) -> MoeConfig.builder()
                        .modelDim(d).hiddenDim(h).experts(e).activation(activation).router(router).capacity(capacity)
                        .priority(priority).losses(losses).routerBias(biases.router()).expertBias(biases.expert())
                        .padding(padding).build())));
    }

    static Arbitrary<RouterConfig> routers(int experts, Set<RouterKind> kinds) {
        List<Arbitrary<? extends RouterConfig>> options = new ArrayList<>();
        if (kinds.contains(RouterKind.TOKEN_CHOICE)) {
            options.add(tokenChoiceRouters(experts));
        }
        if (kinds.contains(RouterKind.NOISY_TOP_K)) {
            options.add(noisyRouters(experts));
        }
        if (kinds.contains(RouterKind.EXPERT_CHOICE)) {
            options.add(Arbitraries.just(new ExpertChoiceRouterConfig()));
        }
        return Arbitraries.oneOf(options);
    }

    static Arbitrary<TokenChoiceRouterConfig> tokenChoiceRouters(int experts) {
        return Arbitraries.integers().between(1, experts).flatMap(k -> Combinators.combine(
                        Arbitraries.of(GateNormalization.class), Arbitraries.of(RenormTiming.class), secondExpertPolicies(k),
                        Arbitraries.frequencyOf(Tuple.of(2, Arbitraries.just(0.0)), Tuple.of(1, Arbitraries.just(0.01)),
                                Tuple.of(1, Arbitraries.just(0.3))),
                        Arbitraries.of(TokenChoiceRouterConfig.JitterTarget.class))
                .as((gates, timing, policy, jitter, target) -> new TokenChoiceRouterConfig(k,
                        policy.kind() == SecondExpertPolicy.Kind.RANDOM ? GateNormalization.RENORMALIZE : gates,
                        timing, policy, jitter, target)));
    }

    /** ALL, or for k = 2 also GShard's RANDOM(θ). */
    static Arbitrary<SecondExpertPolicy> secondExpertPolicies(int k) {
        if (k != 2) {
            return Arbitraries.just(SecondExpertPolicy.ALL);
        }
        return Arbitraries.oneOf(Arbitraries.just(SecondExpertPolicy.ALL),
                Arbitraries.of(0.2, 0.5, 1.0).map(SecondExpertPolicy::random));
    }

    static Arbitrary<NoisyTopKRouterConfig> noisyRouters(int experts) {
        return Combinators.combine(Arbitraries.integers().between(1, experts), Arbitraries.of(NoisyTopKRouterConfig.Noise.class),
                        Arbitraries.of(NoisyTopKRouterConfig.DEFAULT_NOISE_EPSILON, 0.25))
                .as(NoisyTopKRouterConfig::new);
    }

    /** Every capacity mode; expert choice cannot be dropless. */
    static Arbitrary<Capacity> capacities(RouterConfig router) {
        Arbitrary<Integer> minCapacity = Arbitraries.frequencyOf(Tuple.of(3, Arbitraries.just(0)),
                Tuple.of(1, Arbitraries.integers().between(1, 4)));
        Arbitrary<Capacity> factor = Combinators.combine(Arbitraries.of(FACTORS), Arbitraries.of(CapacityBase.class),
                        Arbitraries.of(Rounding.class), minCapacity)
                .as(Capacity::factor);
        // small C (including 0, which drops everything) more often than C ≥ T
        Arbitrary<Capacity> fixed = Arbitraries.frequencyOf(Tuple.of(2, Arbitraries.integers().between(0, 3)),
                Tuple.of(1, Arbitraries.integers().between(0, MAX_TOKENS + 1))).map(Capacity::fixed);
        if (router instanceof ExpertChoiceRouterConfig) {
            return Arbitraries.oneOf(factor, fixed);
        }
        return Arbitraries.oneOf(Arbitraries.just(Capacity.dropless()), factor, fixed);
    }

    /** Biases on and off; noisy top-k with learned noise has no router bias. */
    private static Arbitrary<Biases> biases(RouterConfig router) {
        boolean routerBiasAllowed = !(router instanceof NoisyTopKRouterConfig n && n.noise() == NoisyTopKRouterConfig.Noise.LEARNED);
        return Combinators.combine(Arbitraries.of(false, true), Arbitraries.of(false, true))
                .as((r, x) -> new Biases(r && routerBiasAllowed, x));
    }

    /** The coefficients a router allows: α for token choice, importance and load for noisy top-k, β for all. */
    static Arbitrary<LossWeights> lossWeights(RouterConfig router) {
        Arbitrary<Double> coefficient = Arbitraries.of(0.0, 1e-2, 1.0);
        if (router instanceof TokenChoiceRouterConfig) {
            return Combinators.combine(coefficient, Arbitraries.of(AuxNormalization.class), coefficient)
                    .as((a, n, z) -> LossWeights.of().aux(a, n).z(z));
        }
        if (router instanceof NoisyTopKRouterConfig) {
            return Combinators.combine(coefficient, coefficient, coefficient)
                    .as((z, imp, load) -> LossWeights.of().z(z).importance(imp).load(load));
        }
        return coefficient.map(z -> LossWeights.of().z(z));
    }

    /** T in 0..12 (T = 0 in 1/13, T = 1 in 2/13), G a divisor of T (any G for T = 0), and a padding mask in a quarter of the cases. */
    private static Arbitrary<Shape> shapes() {
        return Arbitraries.frequencyOf(Tuple.of(1, Arbitraries.just(0)), Tuple.of(2, Arbitraries.just(1)),
                Tuple.of(10, Arbitraries.integers().between(2, MAX_TOKENS))).flatMap(t -> Combinators.combine(
                        Arbitraries.of(divisors(t)),
                        Arbitraries.strings().withChars('0', '1').ofLength(t).injectNull(0.75))
                .as((g, p) -> new Shape(t, g, p)));
    }

    /** The divisors of t, or 1..3 for t = 0. */
    static List<Integer> divisors(int t) {
        if (t == 0) {
            return List.of(1, 2, 3);
        }
        return IntStream.rangeClosed(1, t).filter(g -> t % g == 0).boxed().collect(Collectors.toList());
    }

    private static Arbitrary<Inputs> inputs() {
        return Combinators.combine(Arbitraries.of(MoeCase.InputStyle.class), Arbitraries.longs()).as(Inputs::new);
    }

    private static Arbitrary<Call> calls() {
        return Combinators.combine(Arbitraries.of(Mode.class), Arbitraries.longs(), Arbitraries.longs().between(0, 1000))
                .as(Call::new);
    }

    // ---------------------------------------------------------------------------------------------
    // Statistics

    /**
     * Labels the router kind and the capacity mode of a case, and checks that each kind the
     * property asked for occurs in at least {@code minPercent} of the tries. The generators give
     * each asked-for kind a fifth of the tries or more, and properties run 150 tries or more with a
     * floor of 4% (binomial tail below 1e-8 per check), so the check fails when a kind is missing
     * from generation, not by chance.
     */
    static void collectRouterAndCapacity(MoeCase c, Set<RouterKind> routers, Set<CapacityKind> capacities, double minPercent) {
        Statistics.label("router").collect(RouterKind.of(c.config().router()));
        Statistics.label("router").coverage(cov -> {
            for (RouterKind k : routers) {
                cov.check(k).percentage(p -> p >= minPercent);
            }
        });
        Statistics.label("capacity").collect(CapacityKind.of(c.config().capacity()));
        Statistics.label("capacity").coverage(cov -> {
            for (CapacityKind k : capacities) {
                cov.check(k).percentage(p -> p >= minPercent);
            }
        });
    }

    /**
     * Labels E = 1, k = E or k &lt; E (or expert choice), and T = 0, T = 1 or T &gt; 1, and checks that
     * the edge cases occur: T = 0 at all and T = 1 in at least 2% of the tries (generated at 1/13 and
     * 2/13), and, when {@code topK}, E = 1 and k = E in at least 1% and 2% (about 1/6 and 1/3 of top-k
     * cases). The floors are far below the generated shares, so a correct generator fails them with
     * probability below 1e-5 at 150 tries (T = 0 absent: 6e-6); a missing edge case fails them.
     */
    static void collectShape(MoeCase c, boolean topK) {
        int k = c.k();
        Statistics.label("experts").collect(c.isExpertChoice() ? "expert choice" : c.experts() == 1 ? "E=1" : k == c.experts() ? "k=E" : "k<E");
        Statistics.label("tokens").collect(c.tokens() == 0 ? "T=0" : c.tokens() == 1 ? "T=1" : "T>1");
        Statistics.label("tokens").coverage(cov -> {
            cov.check("T=0").percentage(p -> p > 0);
            cov.check("T=1").percentage(p -> p >= 2);
        });
        if (topK) {
            Statistics.label("experts").coverage(cov -> {
                cov.check("E=1").percentage(p -> p >= 1);
                cov.check("k=E").percentage(p -> p >= 2);
            });
        }
    }
}

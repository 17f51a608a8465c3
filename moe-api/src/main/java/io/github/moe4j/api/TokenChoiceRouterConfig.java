package io.github.moe4j.api;

/**
 * Token-choice top-k routing (SPEC §2–3): \( z = \tilde{x} W_r (+ b_r) \), each token takes the
 * k experts with the largest logits (ties: lower expert index), gates per {@link GateNormalization}.
 *
 * @param k                  experts per token, in [1, E]
 * @param gates              how gates are normalised
 * @param renormTiming       for {@link GateNormalization#RENORMALIZE}: before or after capacity dropping
 * @param secondExpertPolicy GShard's second-expert policy; {@link SecondExpertPolicy.Kind#RANDOM} needs k = 2
 * @param jitter             \( \varepsilon \) of Switch's multiplicative input jitter
 *                           \( \tilde{x} = x \odot u,\ u \sim U[1-\varepsilon, 1+\varepsilon] \), training only; in [0, 1)
 * @param jitterTarget       whether only the router sees the jittered input (default) or the experts too
 */
public record TokenChoiceRouterConfig(int k, GateNormalization gates, RenormTiming renormTiming,
                                      SecondExpertPolicy secondExpertPolicy, double jitter,
                                      JitterTarget jitterTarget) implements RouterConfig {

    /** Who receives the jittered input \( \tilde{x} \) (SPEC §2, research §1). */
    public enum JitterTarget {
        /** The router only; experts receive x. Mesh-TF, DeepSpeed, MegaBlocks, Megatron. */
        ROUTER_ONLY,
        /**
         * Router and experts: Hugging Face Switch/Mixtral jitter {@code hidden_states} in place
         * (huggingface/transformers#33969).
         */
        ROUTER_AND_EXPERTS
    }

    public TokenChoiceRouterConfig {
        Checks.requirePositive(k, "router.k");
        Checks.requireNonNull(gates, "router.gates");
        Checks.requireNonNull(renormTiming, "router.renormTiming");
        Checks.requireNonNull(secondExpertPolicy, "router.secondExpertPolicy");
        Checks.requireNonNull(jitterTarget, "router.jitterTarget");
        if (!(jitter >= 0 && jitter < 1)) {
            throw new IllegalArgumentException("router.jitter must be in [0, 1), got " + jitter);
        }
        if (secondExpertPolicy.kind() == SecondExpertPolicy.Kind.RANDOM && k != 2) {
            throw new IllegalArgumentException("router.secondExpertPolicy RANDOM needs k = 2, got k = " + k);
        }
        if (secondExpertPolicy.kind() == SecondExpertPolicy.Kind.RANDOM && gates != GateNormalization.RENORMALIZE) {
            throw new IllegalArgumentException("router.secondExpertPolicy RANDOM compares renormalised gates, so gates must be RENORMALIZE, got " + gates);
        }
    }

    /** Top-k with renormalised gates (before capacity), no jitter, every second choice kept. */
    public static TokenChoiceRouterConfig topK(int k) {
        return new TokenChoiceRouterConfig(k, GateNormalization.RENORMALIZE, RenormTiming.BEFORE_CAPACITY,
                SecondExpertPolicy.ALL, 0, JitterTarget.ROUTER_ONLY);
    }

    /** A copy with other gates. */
    public TokenChoiceRouterConfig withGates(GateNormalization g) {
        return new TokenChoiceRouterConfig(k, g, renormTiming, secondExpertPolicy, jitter, jitterTarget);
    }

    /** A copy with another renormalisation timing. */
    public TokenChoiceRouterConfig withRenormTiming(RenormTiming t) {
        return new TokenChoiceRouterConfig(k, gates, t, secondExpertPolicy, jitter, jitterTarget);
    }

    /** A copy with another second-expert policy. */
    public TokenChoiceRouterConfig withSecondExpertPolicy(SecondExpertPolicy p) {
        return new TokenChoiceRouterConfig(k, gates, renormTiming, p, jitter, jitterTarget);
    }

    /** A copy with jitter \( \varepsilon \) and its target. */
    public TokenChoiceRouterConfig withJitter(double epsilon, JitterTarget target) {
        return new TokenChoiceRouterConfig(k, gates, renormTiming, secondExpertPolicy, epsilon, target);
    }

    @Override
    public int choicesPerToken(int experts) {
        return k;
    }

    @Override
    public void validate(int experts) {
        RouterConfig.requireTopKWithin(k, experts);
    }
}

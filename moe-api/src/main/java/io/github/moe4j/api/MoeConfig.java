package io.github.moe4j.api;

/**
 * The complete, validated description of one sparse MoE layer: sizes, expert kind, router,
 * capacity and priority, loss coefficients and optional biases. Immutable; build it with
 * {@link #builder()} or start from one of the {@link Presets}.
 *
 * @param modelDim   d, the token width (input and output)
 * @param hiddenDim  h, each expert's hidden width
 * @param experts    E
 * @param activation the expert network's kind
 * @param router     how tokens are assigned to experts
 * @param capacity   how many assignments each expert may take per group
 * @param priority   which assignments take capacity first (ignored when nothing can be dropped)
 * @param losses     the coefficients of the auxiliary losses
 * @param routerBias whether the router has a bias \( b_r \in R^E \) (off by default)
 * @param expertBias whether the experts have biases \( b_{in} \in R^{E \times h} \), \( b_{out} \in R^{E \times d} \) (off by default)
 * @param padding    whether padding tokens are routed (losses always leave them out)
 */
public record MoeConfig(int modelDim, int hiddenDim, int experts, Activation activation, RouterConfig router,
                        Capacity capacity, Priority priority, LossWeights losses, boolean routerBias,
                        boolean expertBias, PaddingPolicy padding) {

    public MoeConfig {
        Checks.requirePositive(modelDim, "modelDim");
        Checks.requirePositive(hiddenDim, "hiddenDim");
        Checks.requirePositive(experts, "experts");
        Checks.requireNonNull(activation, "activation");
        Checks.requireNonNull(router, "router");
        Checks.requireNonNull(capacity, "capacity");
        Checks.requireNonNull(priority, "priority");
        Checks.requireNonNull(losses, "losses");
        Checks.requireNonNull(padding, "padding");
        router.validate(experts);
        if (router instanceof ExpertChoiceRouterConfig) {
            if (capacity instanceof Capacity.Dropless) {
                throw new IllegalArgumentException("capacity must be a Factor or Fixed capacity for expert-choice routing "
                        + "(each expert takes exactly C tokens), got Dropless");
            }
            if (losses.aux() != 0) {
                throw new IllegalArgumentException("losses.aux must be 0 for expert-choice routing (it is balanced by construction), got " + losses.aux());
            }
        }
        if (router instanceof NoisyTopKRouterConfig && losses.aux() != 0) {
            throw new IllegalArgumentException("losses.aux must be 0 for noisy top-k routing, which balances with importance and load; got " + losses.aux());
        }
        if (!(router instanceof NoisyTopKRouterConfig) && (losses.importance() != 0 || losses.load() != 0)) {
            throw new IllegalArgumentException("losses.importance and losses.load are defined for noisy top-k routing only, got "
                    + losses.importance() + " and " + losses.load() + " with " + router.getClass().getSimpleName());
        }
        if (router instanceof NoisyTopKRouterConfig n && n.noise() == NoisyTopKRouterConfig.Noise.LEARNED && routerBias) {
            throw new IllegalArgumentException("routerBias is not defined for noisy top-k routing (t2t noisy_top_k_gating has none)");
        }
    }

    /** k for token-choice routers; 0 for expert choice (a token may be taken by 0 to E experts). */
    public int topK() {
        if (router instanceof TokenChoiceRouterConfig t) {
            return t.k();
        }
        if (router instanceof NoisyTopKRouterConfig n) {
            return n.k();
        }
        return 0;
    }

    /** The number of routing entries per token in {@link Routing}: k, or E for expert choice. */
    public int choicesPerToken() {
        return router.choicesPerToken(experts);
    }

    /** The capacity C of a group of {@code tokensPerGroup} tokens ({@link Routing#UNLIMITED} if dropless). */
    public int capacityPerExpert(int tokensPerGroup) {
        return capacity.perExpert(tokensPerGroup, experts, Math.max(1, topK()));
    }

    /** A builder with every field at its default: top-2 renormalised routing, dropless, RELU, no losses. */
    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding this configuration's values. */
    public Builder toBuilder() {
        return new Builder().modelDim(modelDim).hiddenDim(hiddenDim).experts(experts).activation(activation)
                .router(router).capacity(capacity).priority(priority).losses(losses).routerBias(routerBias)
                .expertBias(expertBias).padding(padding);
    }

    /** Collects the fields of a {@link MoeConfig}; {@link #build()} validates them. */
    public static final class Builder {
        private int modelDim;
        private int hiddenDim;
        private int experts;
        private Activation activation = Activation.RELU;
        private RouterConfig router = TokenChoiceRouterConfig.topK(2);
        private Capacity capacity = Capacity.dropless();
        private Priority priority = Priority.RANK_MAJOR;
        private LossWeights losses = LossWeights.of();
        private boolean routerBias;
        private boolean expertBias;
        private PaddingPolicy padding = PaddingPolicy.ROUTED;

        Builder() {}

        /** Sets d. */
        public Builder modelDim(int d) {
            this.modelDim = d;
            return this;
        }

        /** Sets h. */
        public Builder hiddenDim(int h) {
            this.hiddenDim = h;
            return this;
        }

        /** Sets E. */
        public Builder experts(int e) {
            this.experts = e;
            return this;
        }

        /** Sets the expert kind. */
        public Builder activation(Activation a) {
            this.activation = a;
            return this;
        }

        /** Sets the router. */
        public Builder router(RouterConfig r) {
            this.router = r;
            return this;
        }

        /** Sets the capacity. */
        public Builder capacity(Capacity c) {
            this.capacity = c;
            return this;
        }

        /** Sets the priority. */
        public Builder priority(Priority p) {
            this.priority = p;
            return this;
        }

        /** Sets the loss coefficients. */
        public Builder losses(LossWeights l) {
            this.losses = l;
            return this;
        }

        /** Turns the router bias on or off. */
        public Builder routerBias(boolean on) {
            this.routerBias = on;
            return this;
        }

        /** Turns the expert biases on or off. */
        public Builder expertBias(boolean on) {
            this.expertBias = on;
            return this;
        }

        /** Sets whether padding tokens are routed. */
        public Builder padding(PaddingPolicy p) {
            this.padding = p;
            return this;
        }

        /**
         * Validates and builds.
         *
         * @throws IllegalArgumentException naming the field, the value and the rule
         */
        public MoeConfig build() {
            return new MoeConfig(modelDim, hiddenDim, experts, activation, router, capacity, priority, losses,
                    routerBias, expertBias, padding);
        }
    }
}

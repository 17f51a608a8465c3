package io.github.moe4j.conformance;

import io.github.moe4j.api.ExpertChoiceRouterConfig;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.Freeze;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeGradients;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.Routing;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.reference.ReferenceForward;
import io.github.moe4j.reference.ReferenceLayer;
import java.util.Set;

/**
 * The reference's view of one call: its own forward pass, and its forward pass on a routing decided
 * by the backend ({@link ReferenceLayer#forwardWithRouting}), which is what a backend's output,
 * losses and gradients are compared with (SPEC §11).
 */
final class Oracle {
    private final MoeConfig config;
    private final ReferenceLayer layer;
    private final Tensor input;
    private final ForwardOptions options;
    private final Object context;
    private ReferenceForward own;

    Oracle(MoeConfig config, MoeWeights weights, Tensor input, ForwardOptions options, Object context) {
        this.config = config;
        this.layer = new ReferenceLayer(config, weights);
        this.input = input;
        this.options = options;
        this.context = context;
    }

    /** The oracle of a generated case. */
    static Oracle of(MoeCase c) {
        return new Oracle(c.config(), c.weights(), c.input(), c.options(), c);
    }

    MoeConfig config() {
        return config;
    }

    ReferenceLayer layer() {
        return layer;
    }

    Tensor input() {
        return input;
    }

    ForwardOptions options() {
        return options;
    }

    Object context() {
        return context;
    }

    /** The reference's own forward pass (computed once). */
    ReferenceForward own() {
        if (own == null) {
            own = (ReferenceForward) layer.forward(input, options);
        }
        return own;
    }

    /** The reference's forward pass on the backend's routing; the routing is checked for shape first. */
    ReferenceForward on(Routing routing) {
        RoutingChecks.structure(this, routing);
        return layer.forwardWithRouting(input, routing, options);
    }

    /** The reference's gradients on the backend's routing, through the {@link io.github.moe4j.api.MoeLayer} API. */
    MoeGradients backward(ReferenceForward onRouting, Tensor dOutput, Set<Freeze> frozen) {
        return layer.backward(onRouting, dOutput, frozen);
    }

    /** The sizes the tolerances depend on. */
    Tolerances.Sizes sizes() {
        int t = input.dim(0);
        double[] z = own().router().logits();
        double noiseFloor = config.router() instanceof NoisyTopKRouterConfig n && n.noise() == NoisyTopKRouterConfig.Noise.LEARNED
                ? Math.max(n.noiseEpsilon(), 1e-3) : 1; // sigma = softplus + eps0; below 1e-3 the softplus part dominates

        double maxKey = Math.max(Compare.maxAbs(z), Compare.maxAbs(own().router().keys()));
        int choices = config.router() instanceof ExpertChoiceRouterConfig ? config.experts() : config.topK();
        return new Tolerances.Sizes(config.modelDim(), config.hiddenDim(), config.experts(), choices, t,
                t / options.groups(), 1 + maxKey, noiseFloor);
    }
}

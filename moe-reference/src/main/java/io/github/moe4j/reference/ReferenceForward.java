package io.github.moe4j.reference;

import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeLosses;
import io.github.moe4j.api.Routing;
import io.github.moe4j.api.Tensor;

/**
 * The reference's forward result in double precision, and what backward needs. The float32
 * {@link MoeForward} view rounds only at the accessors. Arrays are owned by this object.
 *
 * @param config     the layer's configuration
 * @param layer      the layer that produced it (backward checks it)
 * @param router     logits, probabilities, noise and the inputs they came from
 * @param plan       the routing
 * @param dispatch   which token each expert row holds
 * @param experts    each expert row's activations
 * @param y          the output y, [T, d], in double
 * @param importance [G, E] importance per group (noisy top-k), or null
 * @param loadVector [G, E] Load per group (noisy top-k), or null
 * @param losses     the losses, unweighted, and their weighted total
 */
public record ReferenceForward(MoeConfig config, ReferenceLayer layer, RouterOutput router, RoutingPlan plan,
                               ReferenceLayer.Dispatch dispatch, ReferenceLayer.ExpertOutputs experts, double[] y,
                               double[] importance, double[] loadVector, MoeLosses losses) implements MoeForward {

    /** T. */
    public int tokens() {
        return plan.tokens();
    }

    @Override
    public Tensor output() {
        return Tensor.ofDoubles(y, plan.tokens(), config.modelDim());
    }

    @Override
    public Routing routing() {
        return plan.toRouting();
    }

    @Override
    public void close() {
        // nothing to release: everything is on the Java heap
    }
}

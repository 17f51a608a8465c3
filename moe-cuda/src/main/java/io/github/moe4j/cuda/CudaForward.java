package io.github.moe4j.cuda;

import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeLosses;
import io.github.moe4j.api.Routing;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.RouterNoise;
import io.github.moe4j.api.Tensor;

/**
 * A forward result of a {@link CudaLayer}: the output, routing and losses on the host, plus the
 * input and noise of the call, from which backward reruns the forward pass on the device (nothing
 * stays on the device between calls). Closing it drops them; backward on a closed result throws.
 */
final class CudaForward implements MoeForward {
    private final CudaLayer layer;
    private final Tensor output;
    private final Routing routing;
    private final MoeLosses losses;
    private final RouterNoise noise;
    private final ForwardOptions options;
    private Tensor input;

    CudaForward(CudaLayer layer, Tensor input, RouterNoise noise, ForwardOptions options, Tensor output, Routing routing,
                MoeLosses losses) {
        this.layer = layer;
        this.input = input;
        this.noise = noise;
        this.options = options;
        this.output = output;
        this.routing = routing;
        this.losses = losses;
    }

    CudaLayer layer() {
        return layer;
    }

    /** The forward's input. */
    Tensor input() {
        if (input == null) {
            throw new IllegalStateException("this forward result is closed; backward needs it open");
        }
        return input;
    }

    RouterNoise noise() {
        return noise;
    }

    ForwardOptions options() {
        return options;
    }

    @Override
    public Tensor output() {
        return output;
    }

    @Override
    public Routing routing() {
        return routing;
    }

    @Override
    public MoeLosses losses() {
        return losses;
    }

    @Override
    public void close() {
        input = null;
    }
}

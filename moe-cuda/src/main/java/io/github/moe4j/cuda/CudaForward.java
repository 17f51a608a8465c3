package io.github.moe4j.cuda;

import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeLosses;
import io.github.moe4j.api.Routing;
import io.github.moe4j.api.Tensor;

/**
 * The CUDA layer's forward result, copied to the host. It keeps nothing on the device, since the
 * cuda backend has no backward yet; {@link #close()} does nothing.
 */
final class CudaForward implements MoeForward {
    private final CudaLayer layer;
    private final Tensor output;
    private final Routing routing;
    private final MoeLosses losses;

    CudaForward(CudaLayer layer, Tensor output, Routing routing, MoeLosses losses) {
        this.layer = layer;
        this.output = output;
        this.routing = routing;
        this.losses = losses;
    }

    CudaLayer layer() {
        return layer;
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
        // nothing on the device
    }
}

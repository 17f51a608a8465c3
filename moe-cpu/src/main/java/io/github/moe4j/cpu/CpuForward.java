package io.github.moe4j.cpu;

import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeLosses;
import io.github.moe4j.api.Routing;
import io.github.moe4j.api.Tensor;

/**
 * The CPU layer's forward result (the reference's {@code ReferenceForward}): the output, the
 * routing and losses, and what backward needs: the router's forward ({@link CpuRouter.Forward}),
 * the dispatch and the expert activations. {@link #close()} hands the activations' buffers back to
 * the layer.
 */
final class CpuForward implements MoeForward {
    private final CpuLayer layer;
    private final CpuRouter.Forward routed;
    private final Dispatch dispatch;
    private final CpuLayer.Workspace workspace;
    private final Tensor output;
    private Routing routing;
    private boolean closed;

    CpuForward(CpuLayer layer, CpuRouter.Forward routed, Dispatch dispatch, CpuLayer.Workspace workspace, Tensor output) {
        this.layer = layer;
        this.routed = routed;
        this.dispatch = dispatch;
        this.workspace = workspace;
        this.output = output;
    }

    @Override
    public Tensor output() {
        return output;
    }

    @Override
    public Routing routing() {
        if (routing == null) {
            routing = routed.routing().toRouting();
        }
        return routing;
    }

    @Override
    public MoeLosses losses() {
        return routed.losses().losses();
    }

    CpuLayer layer() {
        return layer;
    }

    CpuRouter.Forward routed() {
        return routed;
    }

    Dispatch dispatch() {
        return dispatch;
    }

    CpuLayer.Workspace workspace() {
        return workspace;
    }

    int tokens() {
        return routed.routing().tokens();
    }

    boolean isClosed() {
        return closed;
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            layer.giveBack(workspace);
        }
    }
}

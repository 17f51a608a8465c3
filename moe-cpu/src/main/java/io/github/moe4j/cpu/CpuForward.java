package io.github.moe4j.cpu;

import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeLosses;
import io.github.moe4j.api.Routing;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.reference.ReferenceForward;

/**
 * The CPU layer's forward result (the reference's {@code ReferenceForward}): the output, the
 * routing and losses, and what backward needs: the router stage's result, the dispatch and the
 * expert activations. {@link #close()} hands the activations' buffers back to the layer.
 */
final class CpuForward implements MoeForward {
    private final CpuLayer layer;
    private final ReferenceForward routed;
    private final Dispatch dispatch;
    private final CpuLayer.Workspace workspace;
    private final Tensor output;
    private final boolean expertsJittered;
    private Routing routing;
    private boolean closed;

    CpuForward(CpuLayer layer, ReferenceForward routed, Dispatch dispatch, CpuLayer.Workspace workspace, Tensor output,
               boolean expertsJittered) {
        this.layer = layer;
        this.routed = routed;
        this.dispatch = dispatch;
        this.workspace = workspace;
        this.output = output;
        this.expertsJittered = expertsJittered;
    }

    @Override
    public Tensor output() {
        return output;
    }

    @Override
    public Routing routing() {
        if (routing == null) {
            routing = routed.plan().toRouting();
        }
        return routing;
    }

    @Override
    public MoeLosses losses() {
        return routed.losses();
    }

    CpuLayer layer() {
        return layer;
    }

    ReferenceForward routed() {
        return routed;
    }

    Dispatch dispatch() {
        return dispatch;
    }

    CpuLayer.Workspace workspace() {
        return workspace;
    }

    boolean expertsJittered() {
        return expertsJittered;
    }

    int tokens() {
        return routed.plan().tokens();
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

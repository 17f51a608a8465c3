package io.github.moe4j.cpu;

import io.github.moe4j.api.Checks;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.Tensor;

/**
 * A moe-cpu layer's inference forward one stage at a time, so that a benchmark can time each stage
 * alone (moe-bench's {@code CpuStagesBenchmark}) and a reader can see what {@link MoeLayer#forward}
 * does in order:
 * <ol>
 * <li>{@link #router()}: the logits by SGEMM, softmax, top-k, capacity slots, gates and losses;</li>
 * <li>{@link #dispatch()}: the kept assignments grouped by expert;</li>
 * <li>{@link #experts()}: every row's expert output, block by block: the block's inputs gathered,
 *     then SGEMM, activation, SGEMM;</li>
 * <li>{@link #combine()}: each token's output, gathered from its kept rows in rank order.</li>
 * </ol>
 * The constructor runs every stage once; each method then runs its stage again on what the stages
 * before it produced, so it can be called repeatedly and timed on its own. The result of
 * {@link #combine()} is bit-identical to {@link MoeLayer#forward}'s output.
 */
public final class CpuStages {
    private final CpuLayer layer;
    private final float[] x;
    private final int tokens;
    private final ForwardOptions options;
    private CpuRouter.Forward routed;
    private Dispatch dispatch;
    private CpuLayer.Workspace ws;

    /**
     * Prepares the stages of one inference forward.
     *
     * @param layer   a layer made by {@link CpuBackend}
     * @param input   [T, d]
     * @param options inference options (training would keep activations; not needed here)
     * @throws IllegalArgumentException if the layer is not moe-cpu's, or the input's shape is wrong
     * @throws IllegalStateException    if the layer was closed
     */
    public CpuStages(MoeLayer layer, Tensor input, ForwardOptions options) {
        Checks.requireNonNull(layer, "layer");
        Checks.requireNonNull(input, "input");
        this.options = Checks.requireNonNull(options, "options");
        if (!(layer instanceof CpuLayer c)) {
            throw new IllegalArgumentException("layer is a " + layer.getClass().getName() + "; CpuStages needs a layer of CpuBackend");
        }
        this.layer = c;
        c.requireOpen();
        this.tokens = c.tokensOf(input);
        this.x = input.toArray();
        router();
        dispatch();
        experts();
    }

    /** Stage 1: the router's logits, probabilities, selection, capacity slots, gates and losses. */
    public void router() {
        routed = layer.router().forward(x, tokens, options);
    }

    /** Stage 2: the kept assignments grouped by expert. */
    public void dispatch() {
        dispatch = Dispatch.of(routed.routing(), layer.config().experts());
        if (ws == null || ws.rows < dispatch.rows()) {
            ws = new CpuLayer.Workspace(dispatch.rows(), layer.config().modelDim());
        }
    }

    /** Stage 3: every dispatched row's expert output, each block's inputs gathered as it runs. */
    public void experts() {
        layer.expertsForward(ws, dispatch, routed.expertInput());
    }

    /** Stage 4: \( y_t = \sum_j g_{t,j} f_{S_t[j]}(x_t) \), [T, d]. */
    public Tensor combine() {
        return Tensor.adopt(layer.combine(dispatch, ws.f, tokens), tokens, layer.config().modelDim());
    }
}

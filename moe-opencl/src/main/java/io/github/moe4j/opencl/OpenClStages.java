package io.github.moe4j.opencl;

import io.github.moe4j.api.Checks;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.Tensor;

/**
 * An OpenCL layer's forward cut after a stage, so that a benchmark can see what each stage costs
 * (moe-bench's {@code OpenClStagesBenchmark}). The forward is one launch of many phases
 * ({@link MoeLayerKernel}); {@link #runThrough} uploads the input and launches the phases from the
 * first through the last phase of a stage:
 * <ol>
 * <li>{@link Stage#ROUTER}: the logits (tiled GEMM), softmax and top-k, capacity positions;</li>
 * <li>{@link Stage#DISPATCH}: the kept assignments counted and grouped by expert, rows gathered;</li>
 * <li>{@link Stage#EXPERTS}: every row's expert output (tiled GEMMs and the activation);</li>
 * <li>{@link Stage#COMBINE}: each token's gate-weighted sum of its kept rows.</li>
 * </ol>
 * A stage's own time is the difference between running through it and through the stage before;
 * what the whole forward adds after the combine is the losses and reading the results back. The
 * phases cannot run alone: each reads what the ones before it left on the device.
 */
public final class OpenClStages {
    /** The forward's stages, in launch order. */
    public enum Stage {
        /** Logits, softmax, top-k, capacity positions. */
        ROUTER,
        /** Counting, grouping by expert, gathering the rows. */
        DISPATCH,
        /** The expert GEMMs and the activation. */
        EXPERTS,
        /** The gate-weighted sum per token. */
        COMBINE
    }

    private final OpenClLayer layer;
    private final Tensor input;
    private final ForwardOptions options;

    /**
     * Prepares the stages of one forward, running the whole forward once (which checks the input and
     * options and sizes the device buffers).
     *
     * @param layer   a layer made by the OpenCL backend
     * @param input   [T, d], with T at least 1
     * @param options the forward's options
     * @throws IllegalArgumentException if the layer is not the OpenCL backend's, or the input is wrong
     * @throws IllegalStateException    if the layer was closed
     */
    public OpenClStages(MoeLayer layer, Tensor input, ForwardOptions options) {
        Checks.requireNonNull(layer, "layer");
        this.input = Checks.requireNonNull(input, "input");
        this.options = Checks.requireNonNull(options, "options");
        if (!(layer instanceof OpenClLayer l)) {
            throw new IllegalArgumentException("layer is a " + layer.getClass().getName() + "; OpenClStages needs a layer of the OpenCL backend");
        }
        this.layer = l;
        try (MoeForward f = layer.forward(input, options)) {
            if (input.dim(0) == 0) {
                throw new IllegalArgumentException("input has 0 tokens; the stages of an empty forward launch nothing");
            }
        }
    }

    /** Uploads the input and runs the forward's phases through the last phase of {@code stage}, reading nothing back. */
    public void runThrough(Stage stage) {
        layer.forwardThrough(input, options, Checks.requireNonNull(stage, "stage"));
    }

    /** The output as the last {@code runThrough(Stage.COMBINE)} left it on the device: the forward's output, bit for bit. */
    public Tensor output() {
        return layer.downloadOutput(input.dim(0));
    }
}

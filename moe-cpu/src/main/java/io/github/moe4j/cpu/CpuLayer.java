package io.github.moe4j.cpu;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.Checks;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.Freeze;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeGradients;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Mode;
import io.github.moe4j.api.Tensor;
import java.util.Arrays;
import java.util.Set;

/**
 * A MoE layer on the CPU: the stages of the reference's {@code ReferenceLayer}, in float32 on a
 * thread pool and BLAS.
 *
 * <ol>
 * <li>Router, routing and losses (SPEC §2–§7), in {@link CpuRouter}: the logits by SGEMM in float32,
 *     then softmax, selection, capacity slots, gates and losses in double on those logits, and in
 *     backward \( \partial L / \partial g \) back to the logits in double and through the router's
 *     weights by SGEMM. This is O(T·d·E) work beside the experts' O(T·k·d·h).</li>
 * <li>Dispatch: the kept assignments grouped by expert in one counting pass (no dense [T, E, C]
 *     tensor). A training forward gathers every row's input X into one buffer, which backward
 *     reads again; an inference forward gathers each block's rows when the block runs.</li>
 * <li>Experts: per block of an expert's rows, \( A = X W_{in} + b_{in} \) (and \( B = X W_{gate} \))
 *     by SGEMM, the activation applied to the block while it is in cache, \( F = H W_{out} + b_{out} \)
 *     by SGEMM.</li>
 * <li>Combine: each token gathers its kept rows in rank order, \( y_t = \sum_j g_{t,j} F_{row(t,j)} \).</li>
 * </ol>
 * Every loop is cut into tasks of a fixed size, so results are bit-identical for any thread count.
 * Buffers are reused: a forward takes the layer's spare workspace and its {@link MoeForward#close()}
 * gives it back. An inference forward's per-worker scratch blocks belong to the layer, as do the
 * per-worker [rows, h] blocks in which a training forward and its backward hold hidden values: the
 * workspace keeps X, A and B for backward, not \( H = \phi(A) \odot B \), which backward computes
 * again per expert (a pass of the activation instead of [rows, h] floats held from forward to
 * backward: 134 MB on configuration L).
 *
 * <p>Not thread-safe (by the {@link MoeLayer} contract).
 */
final class CpuLayer implements MoeLayer {
    /**
     * Rows of one expert GEMM task at most. 1024 ran 2–9 % faster than 512 on M and L, forward and
     * forward+backward, 1 and 2 threads (moe-bench/results/2026-11-23-2155-rowblock): L's experts
     * have about 1024 rows each, and every block streams the expert's weights once more. An
     * inference forward's scratch grows to the largest block it meets, not to this bound.
     */
    static final int ROW_BLOCK = 1024;
    /** Tokens of one gather or combine task. */
    static final int TOKEN_BLOCK = 64;
    /**
     * Output columns of one weight-gradient GEMM task (\( X^\top dA \), \( H^\top dF \)), unless a
     * test asks for fewer. Every task reads all of its expert's rows, so narrow tasks re-read them:
     * on L's shapes (1 thread, OpenBLAS) 256 columns ran these GEMMs at 123–137 GFLOP/s and 2048 at
     * 160–163, and an A/B of whole layers (moe-bench/results/2026-11-23-2254-colblock) took L
     * forward+backward from 4,432 to 3,867 ms with 1 thread and from 2,458 to 2,112 ms with 2.
     */
    static final int COL_BLOCK = 2048;

    private final MoeConfig config;
    private final Workers workers;
    private final RowMajorGemm gemm;
    private final Activation kind;
    private final boolean gated;
    private final int d;
    private final int h;
    private final int e;
    private final float[] wIn;
    private final float[] wGate;
    private final float[] wOut;
    private final float[] bIn;
    private final float[] bOut;
    private final CpuRouter router;
    /** Output columns of one weight-gradient task: {@link #COL_BLOCK}, or fewer in tests. */
    private final int colBlock;
    /** The workspace of the last closed forward, for the next one. */
    private Workspace spare;
    /** Per worker: the [rows, d] and [rows, h] blocks of what an inference forward does not keep, as large as its largest block. */
    private final BlockScratch[] scratch;
    /**
     * Per worker: [rows, h] of hidden values, or their gradient, for training, which keeps a and b
     * but not \( \phi(a) \odot b \): a block's in the forward, an expert's for W_out's gradient, a
     * block's dHidden in backward. As large as the most rows it was asked for.
     */
    private final float[][] hiddenScratch;
    private boolean closed;

    /** A layer whose weight-gradient tasks have {@code colBlock} output columns ({@link #COL_BLOCK}; tests use a few, to cut small layers into many tasks). */
    CpuLayer(MoeConfig config, MoeWeights weights, Workers workers, RowMajorGemm gemm, int colBlock) {
        this.colBlock = colBlock;
        this.config = Checks.requireNonNull(config, "config");
        Checks.requireNonNull(weights, "weights").validate(config);
        this.workers = workers;
        this.gemm = gemm;
        this.kind = config.activation();
        this.gated = kind.isGated();
        this.d = config.modelDim();
        this.h = config.hiddenDim();
        this.e = config.experts();
        this.wIn = weights.wIn().toArray();
        this.wGate = weights.wGate() == null ? null : weights.wGate().toArray();
        this.wOut = weights.wOut().toArray();
        this.bIn = weights.bIn() == null ? null : weights.bIn().toArray();
        this.bOut = weights.bOut() == null ? null : weights.bOut().toArray();
        this.router = new CpuRouter(config, weights, workers, gemm);
        this.scratch = new BlockScratch[workers.threads()];
        this.hiddenScratch = new float[workers.threads()][];
    }

    @Override
    public MoeConfig config() {
        return config;
    }

    /** The router stage (for {@link CpuStages}). */
    CpuRouter router() {
        return router;
    }

    // ---------------------------------------------------------------------------------------------
    // Forward

    @Override
    public MoeForward forward(Tensor input, ForwardOptions options) {
        requireOpen();
        Checks.requireNonNull(input, "input");
        Checks.requireNonNull(options, "options");
        int tokens = tokensOf(input);
        CpuRouter.Forward routed = router.forward(input.toArray(), tokens, options);
        Dispatch dispatch = Dispatch.of(routed.routing(), e);
        // training keeps the inputs and activations backward needs; inference only the rows' outputs
        Workspace ws = take(dispatch.rows(), options.mode() == Mode.TRAINING);
        // the experts receive x, or x ⊙ u when jitter feeds them
        expertsForward(ws, dispatch, routed.expertInput());
        float[] y = combine(dispatch, ws.f, tokens);
        return new CpuForward(this, routed, dispatch, ws, Tensor.adopt(y, tokens, d));
    }

    /** T of a [tokens, modelDim] input, which {@link #forward} and {@link CpuStages} accept; anything else is an IllegalArgumentException. */
    int tokensOf(Tensor input) {
        if (input.rank() != 2) {
            throw new IllegalArgumentException("input has shape " + Arrays.toString(input.shape())
                    + " but [tokens, modelDim] with modelDim = " + d + " was expected");
        }
        input.requireShape("input", "[tokens, modelDim]", input.dim(0), d);
        return input.dim(0);
    }

    /**
     * \( f_e \) of every dispatched row, into {@code ws.f}, its input gathered from {@code expertInput}
     * [T, d]. If ws keeps activations, every row's input goes to {@code ws.x} and a and b to ws, for
     * backward (which computes the hidden values again from them); otherwise each block gathers its
     * rows into its worker's scratch.
     */
    void expertsForward(Workspace ws, Dispatch dispatch, float[] expertInput) {
        int[][] blocks = dispatch.rowBlocks(ROW_BLOCK);
        // a forward that keeps its activations writes them into ws and needs no scratch
        boolean keep = ws.keepsActivations();
        if (keep) {
            gatherRows(dispatch, expertInput, ws.x);
        }
        workers.forEach(blocks.length, (w, b) -> expertForward(ws, keep ? null : scratch(w, blocks[b][2]),
                keep ? hiddenScratch(w, blocks[b][2]) : null, dispatch, expertInput, blocks[b][0], blocks[b][1], blocks[b][2]));
        ws.activationsValid = keep;
    }

    /** Every dispatched row's input, {@code x} [T, d] of its token, into {@code rows} [rows, d]. */
    private void gatherRows(Dispatch dispatch, float[] x, float[] rows) {
        int n = dispatch.rows();
        workers.forEach(blocks(n, ROW_BLOCK), b -> {
            int r0 = b * ROW_BLOCK;
            copyRows(dispatch, x, r0, Math.min(n, r0 + ROW_BLOCK) - r0, rows, r0 * d);
        });
    }

    /** The inputs of dispatched rows [r0, r0 + n), {@code x} [T, d] of their tokens, into {@code dest} from {@code offset}. */
    private void copyRows(Dispatch dispatch, float[] x, int r0, int n, float[] dest, int offset) {
        for (int i = 0; i < n; i++) {
            System.arraycopy(x, dispatch.tokenOfRow()[r0 + i] * d, dest, offset + i * d, d);
        }
    }

    /**
     * Rows [r0, r0 + n) of expert ex: \( f_e \) of each row, into {@code ws.f}. The rows' inputs, the
     * pre-activations a and gate projections b are in ws when it keeps them, and the hidden values in
     * {@code hidBlock} [n, h]; otherwise all are in the worker's blocks {@code blk}, the inputs
     * gathered here and the hidden values over a. One of blk and hidBlock is null.
     */
    private void expertForward(Workspace ws, BlockScratch blk, float[] hidBlock, Dispatch dispatch, float[] expertInput, int ex,
                               int r0, int n) {
        boolean keep = ws.keepsActivations();
        float[] x = keep ? ws.x : blk.x;
        int xOff = keep ? r0 * d : 0;
        if (!keep) {
            copyRows(dispatch, expertInput, r0, n, x, 0);
        }
        float[] a = keep ? ws.a : blk.a;
        float[] b = keep ? ws.b : blk.b;
        float[] hid = keep ? hidBlock : blk.a; // not kept: hidden overwrites a, element by element
        int off = keep ? r0 * h : 0;
        // a = x W_in + b_in
        float beta = 0f;
        if (bIn != null) {
            for (int i = 0; i < n; i++) {
                System.arraycopy(bIn, ex * h, a, off + i * h, h);
            }
            beta = 1f;
        }
        gemm.gemm(false, false, n, h, d, 1f, x, xOff, d, wIn, ex * d * h, h, beta, a, off, h);
        if (gated) {
            // b = x W_gate
            gemm.gemm(false, false, n, h, d, 1f, x, xOff, d, wGate, ex * d * h, h, 0f, b, off, h);
        }
        // hidden = φ(a) (⊙ b), while the block is in cache
        ExpertActivation.forward(kind, a, gated ? b : null, off, off + n * h, hid, 0);
        // f = hidden W_out + b_out
        beta = 0f;
        if (bOut != null) {
            for (int i = 0; i < n; i++) {
                System.arraycopy(bOut, ex * d, ws.f, (r0 + i) * d, d);
            }
            beta = 1f;
        }
        gemm.gemm(false, false, n, d, h, 1f, hid, 0, h, wOut, ex * h * d, d, beta, ws.f, r0 * d, d);
    }

    /** \( y_t = \sum_j g_{t,j} f_{S_t[j]}(x_t) \) over the kept choices in rank order; a token with none kept is 0. */
    float[] combine(Dispatch dispatch, float[] f, int tokens) {
        float[] y = new float[tokens * d];
        forEachKeptRow(dispatch, tokens, (t, j, row) -> {
            float g = dispatch.gateOfRow()[row];
            for (int c = 0; c < d; c++) {
                y[t * d + c] += g * f[row * d + c];
            }
        });
        return y;
    }

    /** What {@link #forEachKeptRow} runs for each kept choice j of token t, dispatched to {@code row}. */
    @FunctionalInterface
    private interface KeptRow {
        void accept(int t, int j, int row);
    }

    /**
     * {@code body(t, j, row)} for every token, in parallel blocks of {@link #TOKEN_BLOCK} tokens, and
     * within a token for each kept choice in rank order: each token's work, and the order of its
     * sums, is the same whatever the number of threads.
     */
    private void forEachKeptRow(Dispatch dispatch, int tokens, KeptRow body) {
        int m = dispatch.choices();
        workers.forEach(blocks(tokens, TOKEN_BLOCK), b -> {
            for (int t = b * TOKEN_BLOCK; t < Math.min(tokens, (b + 1) * TOKEN_BLOCK); t++) {
                for (int j = 0; j < m; j++) {
                    int row = dispatch.rowOf()[t * m + j];
                    if (row >= 0) {
                        body.accept(t, j, row);
                    }
                }
            }
        });
    }

    // ---------------------------------------------------------------------------------------------
    // Backward

    @Override
    public MoeGradients backward(MoeForward forward, Tensor dOutput, Set<Freeze> frozen) {
        requireOpen();
        CpuForward f = requireOwn(forward);
        Checks.requireNonNull(dOutput, "dOutput");
        Checks.requireNonNull(frozen, "frozen");
        int tokens = f.tokens();
        dOutput.requireShape("dOutput", "[tokens, modelDim]", tokens, d).requireFinite("dOutput");
        float[] dy = dOutput.toArray();
        Dispatch dispatch = f.dispatch();
        Workspace ws = f.workspace();
        if (!ws.activationsValid) {
            // an inference forward keeps no inputs or activations, and an earlier backward of this
            // forward overwrote the activations with gradients: compute them again (the forward's
            // expert GEMMs, same bits)
            ws.keepActivations(h, gated);
            expertsForward(ws, dispatch, f.routed().expertInput());
        }
        ws.activationsValid = false; // from here on F becomes dF, then dX; a becomes dA; b becomes dB
        int m = dispatch.choices();

        // combine: y[t] += g F[row], so dg = Σ_c dY[t, c] F[row, c] and dF[row] = g dY[t] (in F's place)
        double[] dGate = new double[tokens * m];
        float[] dF = ws.f;
        forEachKeptRow(dispatch, tokens, (t, j, row) -> {
            float g = dispatch.gateOfRow()[row];
            double s = 0;
            for (int c = 0; c < d; c++) {
                s += (double) dy[t * d + c] * dF[row * d + c];
                dF[row * d + c] = g * dy[t * d + c];
            }
            dGate[t * m + j] = s;
        });
        boolean experts = !frozen.contains(Freeze.EXPERTS);
        float[] gWIn = experts ? new float[e * d * h] : null;
        float[] gWGate = experts && gated ? new float[e * d * h] : null;
        float[] gWOut = experts ? new float[e * h * d] : null;
        float[] gBIn = experts && bIn != null ? new float[e * h] : null;
        float[] gBOut = experts && bOut != null ? new float[e * d] : null;
        if (experts) {
            outputWeightGradients(ws, dispatch, gWOut, gBOut);
        }
        int[][] blocks = dispatch.rowBlocks(ROW_BLOCK);
        workers.forEach(blocks.length, (w, b) -> expertBackward(ws, hiddenScratch(w, blocks[b][2]), blocks[b][0], blocks[b][1],
                blocks[b][2]));
        if (experts) {
            inputWeightGradients(ws, dispatch, gWIn, gWGate, gBIn);
        }
        // gates, losses, router, given dL/dg
        CpuRouter.Gradients rg = router.backward(f.routed(), dGate, frozen);
        float[] dx = rg.input();
        addRowGradients(dispatch, tokens, ws.f, f.routed().expertsJittered() ? f.routed().jitter() : null, dx);
        return new MoeGradients(Tensor.adopt(dx, tokens, d), adopted(rg.router(), d, e), adopted(rg.routerBias(), e),
                adopted(rg.noiseRouter(), d, e), adopted(gWIn, e, d, h), adopted(gWGate, e, d, h), adopted(gWOut, e, h, d),
                adopted(gBIn, e, h), adopted(gBOut, e, d));
    }

    /**
     * The dispatch's backward: rows[row] = x[token(row)] (times u with jitter feeding the experts), so
     * each token sums its kept rows' dx in rank order, times u if given, and adds that to {@code dx}.
     */
    private void addRowGradients(Dispatch dispatch, int tokens, float[] dRows, float[] u, float[] dx) {
        int m = dispatch.choices();
        workers.forEach(blocks(tokens, TOKEN_BLOCK), b -> {
            float[] sum = new float[d];
            for (int t = b * TOKEN_BLOCK; t < Math.min(tokens, (b + 1) * TOKEN_BLOCK); t++) {
                java.util.Arrays.fill(sum, 0f);
                for (int j = 0; j < m; j++) {
                    int row = dispatch.rowOf()[t * m + j];
                    if (row < 0) {
                        continue;
                    }
                    for (int c = 0; c < d; c++) {
                        sum[c] += dRows[row * d + c];
                    }
                }
                for (int c = 0; c < d; c++) {
                    dx[t * d + c] += u == null ? sum[c] : u[t * d + c] * sum[c];
                }
            }
        });
    }

    /**
     * Rows [r0, r0 + n) of expert ex: dF → dHidden in the worker's {@code dHidden} [n, h] → dA in a's
     * place (and dB in b's) → the rows' dx in dF's place.
     */
    private void expertBackward(Workspace ws, float[] dHidden, int ex, int r0, int n) {
        float[] dF = ws.f;
        // forward: f = hidden W_out + b_out, so dHidden = dF W_outᵀ
        gemm.gemm(false, true, n, h, d, 1f, dF, r0 * d, d, wOut, ex * h * d, d, 0f, dHidden, 0, h);
        // forward: hidden = φ(a) ⊙ b (b = 1 if not gated)
        ExpertActivation.backward(kind, ws.a, gated ? ws.b : null, r0 * h, (r0 + n) * h, dHidden, 0, ws.a, ws.b);
        // forward: a = x W_in + b_in, b = x W_gate, so dx = dA W_inᵀ + dB W_gateᵀ (dF of these rows is spent)
        float[] dX = ws.f;
        gemm.gemm(false, true, n, d, h, 1f, ws.a, r0 * h, h, wIn, ex * d * h, h, 0f, dX, r0 * d, d);
        if (gated) {
            gemm.gemm(false, true, n, d, h, 1f, ws.b, r0 * h, h, wGate, ex * d * h, h, 1f, dX, r0 * d, d);
        }
    }

    /**
     * dW_out = Hᵀ dF per expert, cut by output columns, each task computing its expert's hidden values
     * H = φ(a) ⊙ b again (the forward's bits) rather than the forward keeping [rows, h] more; db_out
     * sums dF's rows in order.
     */
    private void outputWeightGradients(Workspace ws, Dispatch dispatch, float[] gWOut, float[] gBOut) {
        int dBlocks = blocks(d, colBlock);
        workers.forEach(e * dBlocks, (w, task) -> {
            int ex = task / dBlocks;
            int c0 = (task % dBlocks) * colBlock;
            int r0 = dispatch.rowStart()[ex];
            int n = dispatch.rowStart()[ex + 1] - r0;
            float[] hid = hiddenScratch(w, n);
            ExpertActivation.forward(kind, ws.a, gated ? ws.b : null, r0 * h, (r0 + n) * h, hid, 0);
            gemm.gemm(true, false, h, Math.min(colBlock, d - c0), n, 1f, hid, 0, h, ws.f, r0 * d + c0, d, 0f,
                    gWOut, ex * h * d + c0, d);
        });
        if (gBOut != null) {
            workers.forEach(e, ex -> sumRows(ws.f, dispatch.rowStart()[ex], dispatch.rowStart()[ex + 1], d, gBOut, ex * d));
        }
    }

    /** dW_in = Xᵀ dA, dW_gate = Xᵀ dB per expert, cut by output columns; db_in sums dA's rows in order. */
    private void inputWeightGradients(Workspace ws, Dispatch dispatch, float[] gWIn, float[] gWGate, float[] gBIn) {
        int hBlocks = blocks(h, colBlock);
        int perExpert = hBlocks * (gated ? 2 : 1);
        workers.forEach(e * perExpert, task -> {
            int ex = task / perExpert;
            int i = task % perExpert;
            boolean gate = i >= hBlocks;
            int c0 = (i % hBlocks) * colBlock;
            int r0 = dispatch.rowStart()[ex];
            int n = dispatch.rowStart()[ex + 1] - r0;
            gemm.gemm(true, false, d, Math.min(colBlock, h - c0), n, 1f, ws.x, r0 * d, d, gate ? ws.b : ws.a, r0 * h + c0, h, 0f,
                    gate ? gWGate : gWIn, ex * d * h + c0, h);
        });
        if (gBIn != null) {
            workers.forEach(e, ex -> sumRows(ws.a, dispatch.rowStart()[ex], dispatch.rowStart()[ex + 1], h, gBIn, ex * h));
        }
    }

    private static void sumRows(float[] m, int from, int to, int width, float[] out, int offset) {
        double[] s = new double[width];
        for (int row = from; row < to; row++) {
            for (int c = 0; c < width; c++) {
                s[c] += m[row * width + c];
            }
        }
        for (int c = 0; c < width; c++) {
            out[offset + c] = (float) s[c];
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Buffers and checks

    /** How many workers' scratch blocks exist (for tests: training never needs them). */
    int scratchBlocks() {
        return (int) java.util.Arrays.stream(scratch).filter(java.util.Objects::nonNull).count();
    }

    /** The worker's [rows, h] hidden scratch, grown if it is smaller: it is as large as the most rows asked for. */
    private float[] hiddenScratch(int worker, int rows) {
        if (hiddenScratch[worker] == null || hiddenScratch[worker].length < rows * h) {
            hiddenScratch[worker] = new float[Math.max(rows, 1) * h];
        }
        return hiddenScratch[worker];
    }

    /** The worker's scratch, grown to hold a block of {@code rows} rows if it is smaller: it is as large as the largest block seen. */
    private BlockScratch scratch(int worker, int rows) {
        if (scratch[worker] == null || scratch[worker].rows < rows) {
            scratch[worker] = new BlockScratch(rows, d, h, gated);
        }
        return scratch[worker];
    }

    private Workspace take(int rows, boolean keepActivations) {
        Workspace ws = spare;
        spare = null;
        if (ws == null || ws.rows < rows) {
            ws = new Workspace(rows, d);
        }
        if (keepActivations) {
            ws.keepActivations(h, gated);
        }
        ws.activationsValid = false;
        return ws;
    }

    /** Called by {@link CpuForward#close()}: keeps the larger workspace for the next forward. */
    void giveBack(Workspace ws) {
        if (!closed && (spare == null || spare.rows < ws.rows)) {
            spare = ws;
        }
    }

    private CpuForward requireOwn(MoeForward forward) {
        Checks.requireNonNull(forward, "forward");
        if (!(forward instanceof CpuForward f) || f.layer() != this) {
            throw new IllegalArgumentException("forward was not returned by this layer's forward (it came from "
                    + (forward instanceof CpuForward ? "another CPU layer" : forward.getClass().getName())
                    + "). Hint: pass backward the MoeForward that this layer's forward returned");
        }
        if (f.isClosed()) {
            throw new IllegalStateException("forward was closed; backward needs the forward result open");
        }
        return f;
    }

    void requireOpen() {
        if (closed) {
            throw new IllegalStateException("this CPU layer was closed");
        }
    }

    private static int blocks(int n, int size) {
        return (n + size - 1) / size;
    }

    private static Tensor adopted(float[] a, int... shape) {
        return a == null ? null : Tensor.adopt(a, shape);
    }

    @Override
    public void close() {
        closed = true;
        spare = null;
        java.util.Arrays.fill(scratch, null);
    }

    /**
     * What the expert stages of one forward keep, per dispatched row (the reference's
     * {@code ExpertNetwork.Activations}, for all rows at once): outputs F [rows, d]; with
     * {@link #keepActivations}, also what backward needs: inputs X [rows, d], pre-activations A
     * [rows, h] and gate projections B [rows, h] (gated kinds); not the hidden values, which backward
     * computes again. Backward reuses F for dF and then for each row's dx, A for dA and B for dB, and
     * marks the activations spent ({@link #activationsValid} false).
     */
    static final class Workspace {
        final int rows;
        private final int d;
        float[] x;
        final float[] f;
        float[] a;
        float[] b;
        /** Whether a, b and f hold this forward's activations (a backward may have spent them). */
        boolean activationsValid;

        Workspace(int rows, int d) {
            this.rows = rows;
            this.d = d;
            this.f = new float[rows * d];
        }

        /** Makes room for X, A and B, if there is none yet (backward computes H = φ(A) ⊙ B again, block by block). */
        void keepActivations(int h, boolean gated) {
            if (a == null) {
                x = new float[rows * d];
                a = new float[rows * h];
                b = gated ? new float[rows * h] : null;
            }
        }

        boolean keepsActivations() {
            return a != null;
        }
    }

    /** One worker's blocks for an inference forward, which keeps none of them: X [rows, d], and A (then H over it) and B [rows, h]. */
    static final class BlockScratch {
        final int rows;
        final float[] x;
        final float[] a;
        final float[] b;

        BlockScratch(int rows, int d, int h, boolean gated) {
            this.rows = rows;
            this.x = new float[rows * d];
            this.a = new float[rows * h];
            this.b = gated ? new float[rows * h] : null;
        }
    }
}

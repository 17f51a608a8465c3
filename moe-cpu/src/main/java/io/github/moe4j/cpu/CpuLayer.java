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
 *     tensor), each expert's rows gathered into one contiguous buffer.</li>
 * <li>Experts: per block of an expert's rows, \( A = X W_{in} + b_{in} \) (and \( B = X W_{gate} \))
 *     by SGEMM, the activation applied to the block while it is in cache, \( F = H W_{out} + b_{out} \)
 *     by SGEMM.</li>
 * <li>Combine: each token gathers its kept rows in rank order, \( y_t = \sum_j g_{t,j} F_{row(t,j)} \).</li>
 * </ol>
 * Every loop is cut into tasks of a fixed size, so results are bit-identical for any thread count.
 * Buffers are reused: a forward takes the layer's spare workspace and its {@link MoeForward#close()}
 * gives it back; backward's scratch belongs to the layer.
 *
 * <p>Not thread-safe (by the {@link MoeLayer} contract).
 */
final class CpuLayer implements MoeLayer {
    /** Rows of one expert GEMM task. */
    static final int ROW_BLOCK = 256;
    /** Tokens of one gather or combine task. */
    static final int TOKEN_BLOCK = 64;
    /** Output columns of one weight-gradient GEMM task. */
    static final int COL_BLOCK = 256;

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
    private Workspace spare;
    private float[] dF = new float[0];
    private float[] dH = new float[0];
    private float[] dA = new float[0];
    private float[] dB = new float[0];
    private float[] dXr = new float[0];
    private boolean closed;

    CpuLayer(MoeConfig config, MoeWeights weights, Workers workers, RowMajorGemm gemm) {
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
    }

    @Override
    public MoeConfig config() {
        return config;
    }

    // ---------------------------------------------------------------------------------------------
    // Forward

    @Override
    public MoeForward forward(Tensor input, ForwardOptions options) {
        requireOpen();
        Checks.requireNonNull(input, "input");
        Checks.requireNonNull(options, "options");
        if (input.rank() != 2) {
            throw new IllegalArgumentException("input has shape " + Arrays.toString(input.shape())
                    + " but [tokens, modelDim] with modelDim = " + d + " was expected");
        }
        int tokens = input.dim(0);
        input.requireShape("input", "[tokens, modelDim]", tokens, d);
        CpuRouter.Forward routed = router.forward(input.toArray(), tokens, options);
        Dispatch dispatch = Dispatch.of(routed.routing(), e);
        Workspace ws = take(dispatch.rows());
        // the experts receive x, or x ⊙ u when jitter feeds them
        gatherRows(dispatch, routed.expertInput(), ws.x);
        int[][] blocks = dispatch.rowBlocks(ROW_BLOCK);
        workers.forEach(blocks.length, b -> expertForward(ws, blocks[b][0], blocks[b][1], blocks[b][2]));
        float[] y = combine(dispatch, ws.f, tokens);
        return new CpuForward(this, routed, dispatch, ws, Tensor.of(y, tokens, d));
    }

    private void gatherRows(Dispatch dispatch, float[] x, float[] rows) {
        int n = dispatch.rows();
        workers.forEach(blocks(n, ROW_BLOCK), b -> {
            for (int row = b * ROW_BLOCK; row < Math.min(n, (b + 1) * ROW_BLOCK); row++) {
                System.arraycopy(x, dispatch.tokenOfRow()[row] * d, rows, row * d, d);
            }
        });
    }

    /** Rows [r0, r0 + n) of expert ex: \( f_e \) of each row, into {@code ws.f}. */
    private void expertForward(Workspace ws, int ex, int r0, int n) {
        // a = x W_in + b_in
        float beta = 0f;
        if (bIn != null) {
            for (int i = 0; i < n; i++) {
                System.arraycopy(bIn, ex * h, ws.a, (r0 + i) * h, h);
            }
            beta = 1f;
        }
        gemm.gemm(false, false, n, h, d, 1f, ws.x, r0 * d, d, wIn, ex * d * h, h, beta, ws.a, r0 * h, h);
        if (gated) {
            // b = x W_gate
            gemm.gemm(false, false, n, h, d, 1f, ws.x, r0 * d, d, wGate, ex * d * h, h, 0f, ws.b, r0 * h, h);
        }
        // hidden = φ(a) (⊙ b), while the block is in cache
        ExpertActivation.forward(kind, ws.a, ws.b, ws.hid, r0 * h, (r0 + n) * h);
        // f = hidden W_out + b_out
        beta = 0f;
        if (bOut != null) {
            for (int i = 0; i < n; i++) {
                System.arraycopy(bOut, ex * d, ws.f, (r0 + i) * d, d);
            }
            beta = 1f;
        }
        gemm.gemm(false, false, n, d, h, 1f, ws.hid, r0 * h, h, wOut, ex * h * d, d, beta, ws.f, r0 * d, d);
    }

    /** \( y_t = \sum_j g_{t,j} f_{S_t[j]}(x_t) \) over the kept choices in rank order; a token with none kept is 0. */
    private float[] combine(Dispatch dispatch, float[] f, int tokens) {
        float[] y = new float[tokens * d];
        int m = dispatch.choices();
        workers.forEach(blocks(tokens, TOKEN_BLOCK), b -> {
            for (int t = b * TOKEN_BLOCK; t < Math.min(tokens, (b + 1) * TOKEN_BLOCK); t++) {
                for (int j = 0; j < m; j++) {
                    int row = dispatch.rowOf()[t * m + j];
                    if (row < 0) {
                        continue;
                    }
                    float g = dispatch.gateOfRow()[row];
                    for (int c = 0; c < d; c++) {
                        y[t * d + c] += g * f[row * d + c];
                    }
                }
            }
        });
        return y;
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
        int rows = dispatch.rows();
        ensureScratch(rows);
        int m = dispatch.choices();

        // combine: y[t] += g F[row], so dg = Σ_c dY[t, c] F[row, c] and dF[row] = g dY[t]
        double[] dGate = new double[tokens * m];
        workers.forEach(blocks(tokens, TOKEN_BLOCK), b -> {
            for (int t = b * TOKEN_BLOCK; t < Math.min(tokens, (b + 1) * TOKEN_BLOCK); t++) {
                for (int j = 0; j < m; j++) {
                    int row = dispatch.rowOf()[t * m + j];
                    if (row < 0) {
                        continue;
                    }
                    float g = dispatch.gateOfRow()[row];
                    double s = 0;
                    for (int c = 0; c < d; c++) {
                        s += (double) dy[t * d + c] * ws.f[row * d + c];
                        dF[row * d + c] = g * dy[t * d + c];
                    }
                    dGate[t * m + j] = s;
                }
            }
        });
        int[][] blocks = dispatch.rowBlocks(ROW_BLOCK);
        workers.forEach(blocks.length, b -> expertBackward(ws, blocks[b][0], blocks[b][1], blocks[b][2]));

        boolean experts = !frozen.contains(Freeze.EXPERTS);
        float[] gWIn = experts ? new float[e * d * h] : null;
        float[] gWGate = experts && gated ? new float[e * d * h] : null;
        float[] gWOut = experts ? new float[e * h * d] : null;
        float[] gBIn = experts && bIn != null ? new float[e * h] : null;
        float[] gBOut = experts && bOut != null ? new float[e * d] : null;
        if (experts) {
            weightGradients(ws, dispatch, gWIn, gWGate, gWOut, gBIn, gBOut);
        }

        // dispatch: rows[row] = x[token(row)], so each token gathers its rows' dx, in rank order
        float[] dExpertInput = new float[tokens * d];
        workers.forEach(blocks(tokens, TOKEN_BLOCK), b -> {
            for (int t = b * TOKEN_BLOCK; t < Math.min(tokens, (b + 1) * TOKEN_BLOCK); t++) {
                for (int j = 0; j < m; j++) {
                    int row = dispatch.rowOf()[t * m + j];
                    if (row < 0) {
                        continue;
                    }
                    for (int c = 0; c < d; c++) {
                        dExpertInput[t * d + c] += dXr[row * d + c];
                    }
                }
            }
        });

        // gates, losses, router, given dL/dg
        CpuRouter.Gradients rg = router.backward(f.routed(), dGate, frozen);
        float[] u = f.routed().jitter();
        boolean expertsJittered = f.routed().expertsJittered();
        float[] dx = rg.input();
        for (int i = 0; i < dx.length; i++) {
            // forward: expertInput = x (or x ⊙ u when jitter reaches the experts)
            dx[i] += expertsJittered ? u[i] * dExpertInput[i] : dExpertInput[i];
        }
        return new MoeGradients(Tensor.of(dx, tokens, d), floats(rg.router(), d, e), floats(rg.routerBias(), e),
                floats(rg.noiseRouter(), d, e), floats(gWIn, e, d, h), floats(gWGate, e, d, h), floats(gWOut, e, h, d),
                floats(gBIn, e, h), floats(gBOut, e, d));
    }

    /** Rows [r0, r0 + n) of expert ex: dF → dH → dA (, dB) → the rows' dx, into the layer's scratch. */
    private void expertBackward(Workspace ws, int ex, int r0, int n) {
        // forward: f = hidden W_out + b_out, so dHidden = dF W_outᵀ
        gemm.gemm(false, true, n, h, d, 1f, dF, r0 * d, d, wOut, ex * h * d, d, 0f, dH, r0 * h, h);
        // forward: hidden = φ(a) ⊙ b (b = 1 if not gated)
        ExpertActivation.backward(kind, ws.a, ws.b, dH, dA, gated ? dB : null, r0 * h, (r0 + n) * h);
        // forward: a = x W_in + b_in, b = x W_gate, so dx = dA W_inᵀ + dB W_gateᵀ
        gemm.gemm(false, true, n, d, h, 1f, dA, r0 * h, h, wIn, ex * d * h, h, 0f, dXr, r0 * d, d);
        if (gated) {
            gemm.gemm(false, true, n, d, h, 1f, dB, r0 * h, h, wGate, ex * d * h, h, 1f, dXr, r0 * d, d);
        }
    }

    /** dW_in = Xᵀ dA, dW_gate = Xᵀ dB, dW_out = Hᵀ dF per expert, cut by output columns; bias sums by rows in order. */
    private void weightGradients(Workspace ws, Dispatch dispatch, float[] gWIn, float[] gWGate, float[] gWOut, float[] gBIn,
                                 float[] gBOut) {
        int hBlocks = blocks(h, COL_BLOCK);
        int dBlocks = blocks(d, COL_BLOCK);
        int perExpert = hBlocks * (gated ? 2 : 1) + dBlocks;
        workers.forEach(e * perExpert, task -> {
            int ex = task / perExpert;
            int i = task % perExpert;
            int r0 = dispatch.rowStart()[ex];
            int n = dispatch.rowStart()[ex + 1] - r0;
            if (i < hBlocks * (gated ? 2 : 1)) {
                boolean gate = i >= hBlocks;
                int c0 = (i % hBlocks) * COL_BLOCK;
                int w = Math.min(COL_BLOCK, h - c0);
                gemm.gemm(true, false, d, w, n, 1f, ws.x, r0 * d, d, gate ? dB : dA, r0 * h + c0, h, 0f,
                        gate ? gWGate : gWIn, ex * d * h + c0, h);
            } else {
                int c0 = (i - hBlocks * (gated ? 2 : 1)) * COL_BLOCK;
                int w = Math.min(COL_BLOCK, d - c0);
                gemm.gemm(true, false, h, w, n, 1f, ws.hid, r0 * h, h, dF, r0 * d + c0, d, 0f, gWOut, ex * h * d + c0, d);
            }
        });
        if (gBIn != null) {
            workers.forEach(e, ex -> {
                sumRows(dA, dispatch.rowStart()[ex], dispatch.rowStart()[ex + 1], h, gBIn, ex * h);
                sumRows(dF, dispatch.rowStart()[ex], dispatch.rowStart()[ex + 1], d, gBOut, ex * d);
            });
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

    private void ensureScratch(int rows) {
        if (dF.length < rows * d) {
            dF = new float[rows * d];
            dXr = new float[rows * d];
        }
        if (dH.length < rows * h) {
            dH = new float[rows * h];
            dA = new float[rows * h];
            dB = gated ? new float[rows * h] : dB;
        }
    }

    private Workspace take(int rows) {
        Workspace ws = spare;
        spare = null;
        if (ws == null || ws.rows < rows) {
            ws = new Workspace(rows, d, h, gated);
        }
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

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("this CPU layer was closed");
        }
    }

    private static int blocks(int n, int size) {
        return (n + size - 1) / size;
    }

    private static Tensor floats(float[] a, int... shape) {
        return a == null ? null : Tensor.of(a, shape);
    }

    @Override
    public void close() {
        closed = true;
        spare = null;
        dF = dH = dA = dB = dXr = new float[0];
    }

    /**
     * What the expert stages of one forward keep, per dispatched row (the reference's
     * {@code ExpertNetwork.Activations}, for all rows at once): inputs X [rows, d], pre-activations
     * A [rows, h], gate projections B [rows, h] (gated kinds), hidden H [rows, h], outputs F [rows, d].
     */
    static final class Workspace {
        final int rows;
        final float[] x;
        final float[] a;
        final float[] b;
        final float[] hid;
        final float[] f;

        Workspace(int rows, int d, int h, boolean gated) {
            this.rows = rows;
            this.x = new float[rows * d];
            this.a = new float[rows * h];
            this.b = gated ? new float[rows * h] : null;
            this.hid = new float[rows * h];
            this.f = new float[rows * d];
        }
    }
}

package io.github.moe4j.cuda;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.AuxNormalization;
import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.Checks;
import io.github.moe4j.api.ExpertChoiceRouterConfig;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.Freeze;
import io.github.moe4j.api.GateNormalization;
import io.github.moe4j.api.Mode;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeGradients;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeLosses;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.NonFiniteException;
import io.github.moe4j.api.PaddingPolicy;
import io.github.moe4j.api.Priority;
import io.github.moe4j.api.RenormTiming;
import io.github.moe4j.api.RouterNoise;
import io.github.moe4j.api.Routing;
import io.github.moe4j.api.SecondExpertPolicy;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * An MoE layer on the device (token choice, noisy top-k or expert choice). Its weights are uploaded once and stay resident; each
 * forward borrows scratch memory from the backend's pool and gives it back on every path.
 *
 * <p>Forward, stage by stage (the kernel files name the reference method each stage mirrors;
 * {@code ReferenceLayer} is the oracle):
 * <ol>
 * <li>router: jitter ({@code multiply_elementwise}), \( z = \tilde{x} W_r \) (GEMM), bias,
 *     softmax, top-k and gates before capacity ({@code router_softmax_topk});</li>
 * <li>capacity: slots per (group, expert) in priority order ({@code assign_slots}), gates after
 *     capacity; the host reads the [G, E] kept counts (the one mid-forward copy) to size the
 *     expert GEMMs;</li>
 * <li>dispatch: rows grouped by expert, then group and slot ({@code dispatch_rows}, {@code gather_rows});
 *     with a finite capacity C (a {@link Capacity.Factor} or {@link Capacity.Fixed} capacity, or
 *     expert choice) the rows are one [E, G·C, d] buffer, each expert's G·C slots in a fixed place and
 *     an empty slot a zero row; dropless packs the kept rows back to back;</li>
 * <li>experts: \( W_{in} \) (and \( W_{gate} \)) GEMM, activation, \( W_{out} \) GEMM: with a finite
 *     capacity each GEMM is one strided-batched GEMM over the E experts
 *     ({@link DeviceRuntime#gemmStridedBatched}), dropless one GEMM per expert;</li>
 * <li>combine: each token gathers its kept outputs in rank order ({@code combine_gather});</li>
 * <li>losses: aux and z per group ({@code losses.cu}), averaged over groups on the host.</li>
 * </ol>
 * Not thread-safe (by the {@link MoeLayer} contract).
 */
final class CudaLayer implements MoeLayer {
    // T = tokens, d = model dim, h = hidden dim, E = experts, k = experts per token, G = groups, N = kept rows

    private final CudaBackend backend;
    private final MoeConfig config;
    /** The token-choice router, or null for noisy top-k. */
    private final TokenChoiceRouterConfig router;
    /** The noisy top-k router, or null for token choice. */
    private final NoisyTopKRouterConfig noisy;
    /** Whether the router is expert choice (then {@code router} and {@code noisy} are null, and choices = E). */
    private final boolean expertChoice;
    private final List<DeviceBuffer> resident = new ArrayList<>();
    private final DeviceBuffer wRouter;
    private final DeviceBuffer wNoise;
    private final DeviceBuffer bRouter;
    private final DeviceBuffer wIn;
    private final DeviceBuffer wGate;
    private final DeviceBuffer wOut;
    private final DeviceBuffer bIn;
    private final DeviceBuffer bOut;
    private boolean closed;

    /** Uploads the weights (already validated); frees what it uploaded if an upload fails. */
    CudaLayer(CudaBackend backend, MoeConfig config, MoeWeights w) {
        this.backend = backend;
        this.config = config;
        this.router = config.router() instanceof TokenChoiceRouterConfig tc ? tc : null;
        this.noisy = config.router() instanceof NoisyTopKRouterConfig n ? n : null;
        this.expertChoice = config.router() instanceof ExpertChoiceRouterConfig;
        try {
            wRouter = upload(w.router());
            bRouter = upload(w.routerBias());
            wNoise = upload(w.noiseRouter());
            wIn = upload(w.wIn());
            wGate = upload(w.wGate());
            wOut = upload(w.wOut());
            bIn = upload(w.bIn());
            bOut = upload(w.bOut());
        } catch (RuntimeException e) {
            freeResident();
            throw e;
        }
    }

    private DeviceBuffer upload(Tensor t) {
        if (t == null) {
            return null;
        }
        DeviceRuntime rt = backend.runtime();
        DeviceBuffer b = rt.allocate(4L * Math.max(1, t.size()));
        resident.add(b);
        rt.copyIn(t.toArray(), b);
        return b;
    }

    @Override
    public MoeConfig config() {
        return config;
    }

    @Override
    public MoeForward forward(Tensor input, ForwardOptions options) {
        Checks.requireNonNull(input, "input");
        Checks.requireNonNull(options, "options");
        if (input.rank() != 2) {
            throw new IllegalArgumentException("input has shape " + java.util.Arrays.toString(input.shape())
                    + " but [tokens, modelDim] with modelDim = " + config.modelDim() + " was expected");
        }
        int tokens = input.dim(0);
        input.requireShape("input", "[tokens, modelDim]", tokens, config.modelDim()).requireFinite("input");
        options.validate(tokens);
        RouterNoise noise = options.noiseFor(config, tokens);
        long biggest = (long) tokens * Math.max(config.modelDim(), Math.max(config.hiddenDim(), config.experts())) * config.choicesPerToken();
        if (biggest > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("tokens = " + tokens + " is too many for one call of the cuda backend: "
                    + "tokens * max(d, h, E) * k = " + biggest + " exceeds 2^31 - 1 (Hint: split the batch)");
        }
        synchronized (backend.lock()) {
            requireOpen();
            try (Scratch s = new Scratch(backend.pool())) {
                Pass pass = run(s, input, noise, options, tokens);
                return new CudaForward(this, input, noise, options, pass.output, pass.routing, pass.losses);
            }
        }
    }

    /** Borrowed pool buffers of one call, all given back by {@link #close()}. */
    private static final class Scratch implements AutoCloseable {
        private final BufferPool pool;
        private final List<DeviceBuffer> taken = new ArrayList<>();

        Scratch(BufferPool pool) {
            this.pool = pool;
        }

        /** A buffer of n 4-byte elements (at least one). */
        DeviceBuffer take(long n) {
            DeviceBuffer b = pool.acquire(4 * Math.max(1, n));
            taken.add(b);
            return b;
        }

        @Override
        public void close() {
            for (DeviceBuffer b : taken) {
                pool.release(b);
            }
            taken.clear();
        }
    }

    /**
     * The device buffers and host results of one forward pass, which backward reruns to get the
     * intermediates it needs (they live in the call's scratch).
     */
    private static final class Pass {
        int tokens;
        int rows;
        int[] expertStart;
        /** Whether the rows are the [E, G*C] layout of a finite capacity (expert GEMMs batched over E). */
        boolean batched;
        /** Rows per expert in the batched layout (G*C), 0 otherwise. */
        int rowsPerExpert;
        int[] realHost;
        DeviceBuffer dummy;
        DeviceBuffer jitter;
        DeviceBuffer logits;
        DeviceBuffer keys;
        DeviceBuffer raw;
        DeviceBuffer eps;
        DeviceBuffer sigma;
        DeviceBuffer kPlus1;
        boolean smooth;
        float[] importance;
        float[] loadVector;
        DeviceBuffer routerIn;
        DeviceBuffer probs;
        DeviceBuffer lse;
        DeviceBuffer selected;
        DeviceBuffer slot;
        DeviceBuffer gateBefore;
        DeviceBuffer gate;
        DeviceBuffer real;
        DeviceBuffer stats;
        DeviceBuffer rowOf;
        DeviceBuffer rowExpert;
        DeviceBuffer rowAssignment;
        DeviceBuffer xd;
        DeviceBuffer pre;
        DeviceBuffer lin;
        DeviceBuffer hidden;
        DeviceBuffer out;
        boolean expertsJittered;
        Tensor output;
        Routing routing;
        MoeLosses losses;
    }

    private Pass run(Scratch s, Tensor input, RouterNoise noise, ForwardOptions options, int tokens) {
        Pass pass = new Pass();
        pass.tokens = tokens;
        DeviceRuntime rt = backend.runtime();
        int d = config.modelDim();
        int h = config.hiddenDim();
        int e = config.experts();
        int k = config.choicesPerToken();
        int groups = options.groups();
        int gs = tokens / groups;
        int capacity = config.capacityPerExpert(gs);
        if (tokens == 0) {
            pass.routing = new Routing(0, e, k, groups, capacity, new int[0], new float[0], new int[0], new int[e], new int[e]);
            pass.output = Tensor.zeros(0, d);
            pass.losses = MoeLosses.weighted(0, 0, 0, 0, config.losses());
            return pass;
        }
        int capacityArg = (int) Math.min(capacity, (long) gs * k);
        int[] real = new int[tokens];
        int[] routed = new int[tokens];
        for (int t = 0; t < tokens; t++) {
            real[t] = options.paddingMask() == null || options.paddingMask().get(t) == 1f ? 1 : 0;
            routed[t] = real[t] == 1 || config.padding() == PaddingPolicy.ROUTED ? 1 : 0;
        }
        DeviceBuffer dummy = s.take(1);
        pass.dummy = dummy;
        pass.realHost = real;
        pass.jitter = null;

        // Stage 1: router
        DeviceBuffer x = s.take((long) tokens * d);
        rt.copyIn(input.toArray(), x);
        DeviceBuffer routerIn = x;
        DeviceBuffer expertIn = x;
        if (noise.jitter() != null) {
            DeviceBuffer u = s.take((long) tokens * d);
            rt.copyIn(noise.jitter().toArray(), u);
            DeviceBuffer jittered = s.take((long) tokens * d);
            rt.launch(Kernel.MULTIPLY_ELEMENTWISE, Grid.linear((long) tokens * d), x, u, jittered, tokens * d);
            routerIn = jittered;
            pass.jitter = u;
            if (router != null && router.jitterTarget() == TokenChoiceRouterConfig.JitterTarget.ROUTER_AND_EXPERTS) {
                expertIn = jittered;
                pass.expertsJittered = true;
            }
        }
        pass.routerIn = routerIn;
        DeviceBuffer logits = s.take((long) tokens * e);
        rt.gemm(tokens, e, d, routerIn, 0, wRouter, 0, logits, 0);
        if (bRouter != null) {
            rt.launch(Kernel.ADD_ROW_BIAS, Grid.linear((long) tokens * e), logits, bRouter, tokens, e);
        }
        DeviceBuffer routedBuf = s.take(tokens);
        rt.copyIn(routed, routedBuf);
        DeviceBuffer realBuf = s.take(tokens);
        rt.copyIn(real, realBuf);
        DeviceBuffer keys = logits;
        pass.logits = logits;
        pass.keys = logits;
        boolean noisyKeys = noisy != null && noisy.noise() == NoisyTopKRouterConfig.Noise.LEARNED && options.mode() == Mode.TRAINING
                && noise.logitNoise() != null;
        if (noisyKeys) {
            DeviceBuffer raw = s.take((long) tokens * e);
            rt.gemm(tokens, e, d, x, 0, wNoise, 0, raw, 0);
            DeviceBuffer eps = s.take((long) tokens * e);
            rt.copyIn(noise.logitNoise().toArray(), eps);
            DeviceBuffer sigma = s.take((long) tokens * e);
            keys = s.take((long) tokens * e);
            rt.launch(Kernel.NOISY_KEYS, Grid.linear((long) tokens * e), logits, raw, eps, sigma, keys, tokens * e,
                    (float) noisy.noiseEpsilon());
            pass.raw = raw;
            pass.eps = eps;
            pass.sigma = sigma;
            pass.keys = keys;
        }
        boolean randomSecond = router != null && router.secondExpertPolicy().kind() == SecondExpertPolicy.Kind.RANDOM
                && noise.secondExpertUniform() != null;
        DeviceBuffer uniform = dummy;
        if (randomSecond) {
            uniform = s.take(tokens);
            rt.copyIn(noise.secondExpertUniform().toArray(), uniform);
        }
        DeviceBuffer probs = s.take((long) tokens * e);
        DeviceBuffer selected = s.take((long) tokens * k);
        DeviceBuffer lse = s.take(tokens);
        DeviceBuffer status = s.take(1);
        rt.copyIn(new int[] {Integer.MAX_VALUE}, status);
        DeviceBuffer gateBefore;
        DeviceBuffer slot = s.take((long) tokens * k);
        DeviceBuffer loadGE = s.take((long) groups * e);
        DeviceBuffer keptGE = s.take((long) groups * e);
        DeviceBuffer gate = s.take((long) tokens * k);
        if (expertChoice) {
            // Stages 1 and 2 of expert choice: s = softmax(z); each expert takes its C best tokens, gate = s
            rt.launch(Kernel.ROUTER_SOFTMAX, Grid.linear(tokens), logits, probs, lse, status, tokens, e);
            rt.launch(Kernel.EXPERT_CHOICE_SELECT, Grid.linear((long) groups * e), probs, routedBuf, selected, slot, gate, loadGE,
                    keptGE, tokens, e, groups, (int) Math.min(capacity, (long) gs));
            gateBefore = gate;
        } else {
            gateBefore = s.take((long) tokens * k);
            DeviceBuffer priorityGate = s.take((long) tokens * k);
            DeviceBuffer ask = s.take((long) tokens * k);
            DeviceBuffer top1 = s.take(tokens);
            boolean renormalize = noisy != null || router.gates() == GateNormalization.RENORMALIZE;
            boolean after = router != null && renormalize && router.renormTiming() == RenormTiming.AFTER_CAPACITY;
            boolean byProb = !renormalize || after;
            rt.launch(Kernel.ROUTER_SOFTMAX_TOPK, Grid.linear(tokens), logits, keys, routedBuf, uniform, probs, selected, gateBefore,
                    priorityGate, ask, top1, lse, status, tokens, e, k, renormalize ? 1 : 0, byProb ? 1 : 0, randomSecond ? 1 : 0,
                    randomSecond ? (float) router.secondExpertPolicy().threshold() : 1f);

            // Stage 2: capacity
            DeviceBuffer order = dummy;
            if (config.priority() == Priority.BATCH_PRIORITIZED) {
                order = s.take(tokens);
                rt.launch(Kernel.BPR_TOKEN_ORDER, Grid.linear(tokens), top1, order, tokens, gs);
            }
            rt.launch(Kernel.FILL_INT, Grid.linear((long) tokens * k), slot, -1, tokens * k);
            rt.launch(Kernel.ASSIGN_SLOTS, Grid.linear((long) groups * e), selected, ask, priorityGate, order, slot, loadGE, keptGE,
                    tokens, e, k, groups, capacityArg, config.priority().ordinal());
            rt.launch(Kernel.GATES_AFTER_CAPACITY, Grid.linear(tokens), logits, selected, gateBefore, slot, gate, tokens, e, k,
                    after ? 1 : 0);
        }
        int[] statusHost = new int[1];
        rt.copyOut(status, statusHost);
        if (statusHost[0] != Integer.MAX_VALUE) {
            float[] z = new float[tokens * e];
            rt.copyOut(logits, z);
            throw new NonFiniteException("router logits", statusHost[0], new int[] {tokens, e}, z[statusHost[0]]);
        }
        int[] keptHost = new int[groups * e];
        rt.copyOut(keptGE, keptHost);
        int[] rowBase = new int[groups * e];
        int[] expertStart = new int[e + 1];
        int rows = 0;
        // A finite capacity C: every (group, expert) has min(C, its possible assignments) slots, laid out
        // [E][G][slots]; the kept slots of a (group, expert) are 0 .. kept - 1, the rest stay empty rows
        int slotsPerGroup = expertChoice ? (int) Math.min(capacity, (long) gs) : capacityArg;
        long batchedRows = (long) e * groups * slotsPerGroup;
        boolean batched = (expertChoice || !(config.capacity() instanceof Capacity.Dropless))
                && batchedRows * Math.max(d, h) <= Integer.MAX_VALUE;
        for (int ex = 0; ex < e; ex++) {
            expertStart[ex] = rows;
            for (int g = 0; g < groups; g++) {
                rowBase[g * e + ex] = rows;
                rows += batched ? slotsPerGroup : keptHost[g * e + ex];
            }
        }
        expertStart[e] = rows;
        pass.batched = batched;
        pass.rowsPerExpert = batched ? groups * slotsPerGroup : 0;

        // Stage 3: dispatch
        DeviceBuffer rowBaseBuf = s.take((long) groups * e);
        rt.copyIn(rowBase, rowBaseBuf);
        DeviceBuffer rowOf = s.take((long) tokens * k);
        DeviceBuffer rowExpert = s.take(rows);
        DeviceBuffer rowAssignment = s.take(rows);
        if (batched) {
            // empty slots: no expert, no assignment (the activation and combine backward write 0 there)
            rt.launch(Kernel.FILL_INT, Grid.linear(rows), rowExpert, -1, rows);
            rt.launch(Kernel.FILL_INT, Grid.linear(rows), rowAssignment, -1, rows);
        }
        rt.launch(Kernel.DISPATCH_ROWS, Grid.linear((long) tokens * k), selected, slot, rowBaseBuf, rowOf, rowExpert, rowAssignment,
                tokens, e, k, gs);
        DeviceBuffer out = dummy;
        pass.rows = rows;
        pass.expertStart = expertStart;
        pass.rowOf = rowOf;
        pass.rowExpert = rowExpert;
        pass.rowAssignment = rowAssignment;
        if (rows > 0) {
            DeviceBuffer xd = s.take((long) rows * d);
            if (batched) {
                // zero rows at empty slots (the int 0 fill is the bit pattern of +0.0f)
                rt.launch(Kernel.FILL_INT, Grid.linear((long) rows * d), xd, 0, rows * d);
            }
            rt.launch(Kernel.GATHER_ROWS, Grid.linear((long) tokens * k * d), expertIn, rowOf, xd, tokens, k, d);

            // Stage 4: experts
            Activation act = config.activation();
            DeviceBuffer pre = s.take((long) rows * h);
            DeviceBuffer linear = act.isGated() ? s.take((long) rows * h) : dummy;
            DeviceBuffer hidden = s.take((long) rows * h);
            DeviceRuntime.GemmOps plain = DeviceRuntime.GemmOps.PLAIN;
            expertGemm(pass, plain, false, d, h, xd, d, 0, wIn, 0, (long) d * h, pre, h, 0);
            if (act.isGated()) {
                expertGemm(pass, plain, false, d, h, xd, d, 0, wGate, 0, (long) d * h, linear, h, 0);
            }
            rt.launch(Kernel.EXPERT_ACTIVATION, Grid.linear((long) rows * h), pre, linear, bIn == null ? dummy : bIn, rowExpert,
                    hidden, rows, h, activationKind(act), act.isGated() ? 1 : 0, bIn == null ? 0 : 1);
            pass.xd = xd;
            pass.pre = pre;
            pass.lin = linear;
            pass.hidden = hidden;
            out = s.take((long) rows * d);
            expertGemm(pass, plain, false, h, d, hidden, h, 0, wOut, 0, (long) h * d, out, d, 0);
        }
        pass.out = out;

        // Stage 5: combine
        DeviceBuffer y = s.take((long) tokens * d);
        rt.launch(Kernel.COMBINE_GATHER, Grid.linear((long) tokens * d), out, rowOf, selected, gate, bOut == null ? dummy : bOut, y,
                tokens, k, d, bOut == null ? 0 : 1);

        // Stage 6: losses
        DeviceBuffer stats = s.take(2L * groups * e);
        rt.launch(Kernel.LOSS_EXPERT_STATS, Grid.linear((long) groups * e), selected, probs, realBuf, stats, tokens, e, k, groups,
                normalizationKind(config.losses().auxNormalization()));
        DeviceBuffer auxG = s.take(groups);
        DeviceBuffer zG = s.take(groups);
        rt.launch(Kernel.LOSS_GROUP_TOTALS, Grid.linear(groups), stats, lse, realBuf, auxG, zG, tokens, e, groups);
        double importanceLoss = 0;
        double loadLoss = 0;
        if (noisy != null) {
            pass.smooth = noisyKeys && k < e;
            DeviceBuffer prob = dummy;
            if (pass.smooth) {
                prob = s.take((long) tokens * e);
                DeviceBuffer kPlus1 = s.take(tokens);
                rt.launch(Kernel.PROB_IN_TOP_K, Grid.linear(tokens), logits, keys, pass.sigma, selected, prob, kPlus1, tokens, e, k);
                pass.kPlus1 = kPlus1;
            }
            DeviceBuffer importance = s.take((long) groups * e);
            DeviceBuffer loadVector = s.take((long) groups * e);
            rt.launch(Kernel.NOISY_LOSS_STATS, Grid.linear((long) groups * e), selected, gateBefore, prob, realBuf, importance,
                    loadVector, tokens, e, k, groups, pass.smooth ? 1 : 0);
            pass.importance = new float[groups * e];
            rt.copyOut(importance, pass.importance);
            pass.loadVector = new float[groups * e];
            rt.copyOut(loadVector, pass.loadVector);
            for (int g = 0; g < groups; g++) {
                importanceLoss += cvSquared(pass.importance, g * e, e);
                loadLoss += cvSquared(pass.loadVector, g * e, e);
            }
        }
        pass.probs = probs;
        pass.lse = lse;
        pass.selected = selected;
        pass.slot = slot;
        pass.gateBefore = gateBefore;
        pass.gate = gate;
        pass.real = realBuf;
        pass.stats = stats;

        // Back to the host
        float[] yHost = new float[tokens * d];
        rt.copyOut(y, yHost);
        int[] selectedHost = new int[tokens * k];
        rt.copyOut(selected, selectedHost);
        float[] gateHost = new float[tokens * k];
        rt.copyOut(gate, gateHost);
        int[] slotHost = new int[tokens * k];
        rt.copyOut(slot, slotHost);
        int[] loadHost = new int[groups * e];
        rt.copyOut(loadGE, loadHost);
        float[] auxHost = new float[groups];
        rt.copyOut(auxG, auxHost);
        float[] zHost = new float[groups];
        rt.copyOut(zG, zHost);
        int[] load = new int[e];
        int[] kept = new int[e];
        for (int g = 0; g < groups; g++) {
            for (int ex = 0; ex < e; ex++) {
                load[ex] += loadHost[g * e + ex];
                kept[ex] += keptHost[g * e + ex];
            }
        }
        double aux = 0;
        double z = 0;
        for (int g = 0; g < groups; g++) {
            aux += auxHost[g];
            z += zHost[g];
        }
        Routing routing = new Routing(tokens, e, k, groups, capacity, selectedHost, gateHost, slotHost, load, kept);
        pass.routing = routing;
        pass.losses = MoeLosses.weighted(router == null ? 0 : aux / groups, z / groups, importanceLoss / groups, loadLoss / groups,
                config.losses());
        pass.output = Tensor.of(yHost, tokens, d);
        return pass;
    }

    /**
     * One expert-stage GEMM for every expert ex: \( C_{ex} = \mathrm{op}(A_{ex})\, \mathrm{op}(B_{ex}) \),
     * where the expert's n_ex dispatched rows are the GEMM's m (when {@code rowsInK} is false: op(A)
     * [n_ex, p], op(B) [p, q]) or its k (when true: op(A) [p, n_ex] stored [n_ex, p], op(B) [n_ex, q]).
     * Each operand X of expert ex starts at element {@code start[ex] * xRow + ex * xExpert}: a buffer of
     * dispatched rows has {@code xRow} elements per row and {@code xExpert} 0, a weight has {@code xRow}
     * 0 and {@code xExpert} elements per expert. In the batched layout ({@code start[ex] = ex * R},
     * R = G·C rows per expert) that is a stride of {@code R * xRow + xExpert}, and the E GEMMs are one
     * {@link DeviceRuntime#gemmStridedBatched} with n_ex = R; otherwise one
     * {@link DeviceRuntime#gemm} per expert.
     */
    private void expertGemm(Pass pass, DeviceRuntime.GemmOps ops, boolean rowsInK, int p, int q, DeviceBuffer a, int aRow,
                            long aExpert, DeviceBuffer b, int bRow, long bExpert, DeviceBuffer c, int cRow, long cExpert) {
        DeviceRuntime rt = backend.runtime();
        int e = config.experts();
        if (pass.batched) {
            int r = pass.rowsPerExpert;
            int m = rowsInK ? p : r;
            int n = q;
            int k = rowsInK ? r : p;
            rt.gemmStridedBatched(ops, m, n, k, a, 0, (long) r * aRow + aExpert, b, 0, (long) r * bRow + bExpert, c, 0,
                    (long) r * cRow + cExpert, e);
            return;
        }
        int[] start = pass.expertStart;
        for (int ex = 0; ex < e; ex++) {
            int rows = start[ex + 1] - start[ex];
            long r0 = start[ex];
            rt.gemm(ops, rowsInK ? p : rows, q, rowsInK ? rows : p, a, r0 * aRow + ex * aExpert, b, r0 * bRow + ex * bExpert, c,
                    r0 * cRow + ex * cExpert);
        }
    }

    /**
     * t2t's {@code cv_squared} of {@code v[offset .. offset + n)} in double on the host, as
     * {@code CoefficientOfVariation#squared}: \( n' = n + 10^{-10} \), \( \mu = \sum v / n' \),
     * \( \mathrm{var} = \sum (v - \mu)^2 / n' \), \( \mathrm{cv}^2 = \mathrm{var} / (\mu^2 + 10^{-10}) \).
     */
    static double cvSquared(float[] v, int offset, int n) {
        double count = n + 1e-10;
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += v[offset + i];
        }
        double mean = sum / count;
        double var = 0;
        for (int i = 0; i < n; i++) {
            var += (v[offset + i] - mean) * (v[offset + i] - mean);
        }
        var /= count;
        return var / (mean * mean + 1e-10);
    }

    /**
     * Backward of {@link #cvSquared} on the host in double, as {@code CoefficientOfVariation#squaredBackward}:
     * writes \( \partial \mathrm{cv}^2 / \partial v_i \cdot \mathit{scale} \) of {@code v[offset .. offset + n)} into
     * {@code out[offset ..]}, with \( \partial \mathrm{var} / \partial v_i = \tfrac{2}{n'} ((v_i - \mu) - \tfrac{1}{n'} \sum_j (v_j - \mu)) \)
     * and \( \partial \mathrm{cv}^2 / \partial v_i = \dfrac{\partial \mathrm{var} / \partial v_i}{\mu^2 + 10^{-10}}
     * - \dfrac{\mathrm{var} \cdot 2 \mu / n'}{(\mu^2 + 10^{-10})^2} \).
     */
    static void cvSquaredBackward(float[] v, int offset, int n, double scale, float[] out) {
        double count = n + 1e-10;
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += v[offset + i];
        }
        double mean = sum / count;
        double var = 0;
        double deviations = 0;
        for (int i = 0; i < n; i++) {
            var += (v[offset + i] - mean) * (v[offset + i] - mean);
            deviations += v[offset + i] - mean;
        }
        var /= count;
        double denominator = mean * mean + 1e-10;
        for (int i = 0; i < n; i++) {
            double dVar = 2 / count * ((v[offset + i] - mean) - deviations / count);
            out[offset + i] = (float) (scale * (dVar / denominator - var * 2 * mean / count / (denominator * denominator)));
        }
    }

    /** The {@code kind} argument of {@code expert_activation}: 0 RELU, 1 exact GELU, 2 tanh GELU, 3 SiLU. */
    static int activationKind(Activation a) {
        switch (a) {
            case RELU:
                return 0;
            case GELU:
            case GEGLU:
                return 1;
            case GELU_TANH:
            case GEGLU_TANH:
                return 2;
            case SILU:
            case SWIGLU:
                return 3;
            default:
                throw new AssertionError(a);
        }
    }

    /** The {@code normalization} argument of {@code loss_expert_stats}. */
    static int normalizationKind(AuxNormalization n) {
        switch (n) {
            case TOP1:
                return 0;
            case TOPK_NORMALIZED:
                return 1;
            case TOPK_COUNT:
                return 2;
            default:
                throw new AssertionError(n);
        }
    }

    /**
     * {@inheritDoc}
     *
     * <p>Reruns the forward pass on the device from the input and noise that {@code forward} kept on
     * the host (deterministic, so it reproduces the same routing, which is checked), then runs the
     * backward stages in reverse (the kernel files name the reference method each mirrors;
     * {@code ReferenceLayer#backward} is the oracle):
     * <ol>
     * <li>combine: \( \partial L / \partial g \) per assignment ({@code combine_backward_gates}) and
     *     \( \partial L / \partial f \) per dispatched row ({@code combine_backward_rows});</li>
     * <li>experts: per expert, \( \partial L / \partial \mathit{hidden} = \delta W_{out}^\top \) (GEMM),
     *     the nonlinearity ({@code expert_activation_backward}), the rows' input gradient (GEMMs),
     *     and unless {@link Freeze#EXPERTS}, \( X^\top \partial L / \partial a \),
     *     \( X^\top \partial L / \partial b \), \( \mathit{hidden}^\top \delta \) (GEMMs) and the bias
     *     sums ({@code segment_column_sums});</li>
     * <li>routing and losses: \( \partial L / \partial z \) per token ({@code router_backward});</li>
     * <li>router: \( \partial L / \partial \tilde{x} = \partial L / \partial z\, W_r^\top \) (GEMM), the input
     *     gradient through dispatch and jitter ({@code input_gradient}), and unless
     *     {@link Freeze#ROUTER}, \( \tilde{x}^\top \partial L / \partial z \) (GEMM) and the bias sum.</li>
     * </ol>
     * Every output element is owned by one work-item or GEMM: no atomics, deterministic.
     *
     * @throws IllegalArgumentException if {@code forward} did not come from this layer, or {@code dOutput} is not [T, d]
     * @throws IllegalStateException    if {@code forward} was closed, or this layer or its backend is closed
     * @throws NonFiniteException       if {@code dOutput} holds a NaN or infinity
     */
    @Override
    public MoeGradients backward(MoeForward forward, Tensor dOutput, Set<Freeze> frozen) {
        Checks.requireNonNull(forward, "forward");
        if (!(forward instanceof CudaForward f) || f.layer() != this) {
            throw new IllegalArgumentException("forward was not returned by this layer's forward (it came from "
                    + (forward instanceof CudaForward ? "another cuda layer" : forward.getClass().getName())
                    + "). Hint: pass backward the MoeForward that this layer's forward returned");
        }
        Checks.requireNonNull(dOutput, "dOutput");
        Checks.requireNonNull(frozen, "frozen");
        int tokens = f.routing().tokens();
        dOutput.requireShape("dOutput", "[tokens, modelDim]", tokens, config.modelDim()).requireFinite("dOutput");
        Tensor input = f.input();
        synchronized (backend.lock()) {
            requireOpen();
            try (Scratch s = new Scratch(backend.pool())) {
                Pass pass = run(s, input, f.noise(), f.options(), tokens);
                if (!pass.routing.equals(f.routing())) {
                    throw new IllegalStateException("rerunning the forward pass for backward gave another routing than the forward "
                            + "did; the device is not deterministic (this is a bug: please report it)");
                }
                return backwardPass(s, pass, dOutput, frozen);
            }
        }
    }

    /**
     * The gate kind of {@code router_backward}: 0 NONE, 1 RENORMALIZE before capacity, 2 after.
     * Expert choice's gates are the probabilities of the kept choices, as NONE's.
     */
    private int gatesKind() {
        if (expertChoice || router.gates() == GateNormalization.NONE) {
            return 0;
        }
        return router.renormTiming() == RenormTiming.AFTER_CAPACITY ? 2 : 1;
    }

    private MoeGradients backwardPass(Scratch s, Pass pass, Tensor dOutput, Set<Freeze> frozen) {
        DeviceRuntime rt = backend.runtime();
        int tokens = pass.tokens;
        int d = config.modelDim();
        int h = config.hiddenDim();
        int e = config.experts();
        int k = config.choicesPerToken();
        boolean routerGrads = !frozen.contains(Freeze.ROUTER);
        boolean expertGrads = !frozen.contains(Freeze.EXPERTS);
        boolean gated = config.activation().isGated();
        boolean noiseGrads = routerGrads && noisy != null && noisy.noise() == NoisyTopKRouterConfig.Noise.LEARNED;
        if (tokens == 0) {
            return new MoeGradients(Tensor.zeros(0, d), routerGrads ? Tensor.zeros(d, e) : null,
                    routerGrads && bRouter != null ? Tensor.zeros(e) : null, noiseGrads ? Tensor.zeros(d, e) : null,
                    expertGrads ? Tensor.zeros(e, d, h) : null, expertGrads && gated ? Tensor.zeros(e, d, h) : null,
                    expertGrads ? Tensor.zeros(e, h, d) : null, expertGrads && bIn != null ? Tensor.zeros(e, h) : null,
                    expertGrads && bOut != null ? Tensor.zeros(e, d) : null);
        }
        int groups = pass.routing.groups();
        int gs = tokens / groups;
        int rows = pass.rows;
        DeviceBuffer dummy = pass.dummy;
        DeviceRuntime.GemmOps transB = new DeviceRuntime.GemmOps(false, true, false);
        DeviceRuntime.GemmOps transBAdd = new DeviceRuntime.GemmOps(false, true, true);
        DeviceRuntime.GemmOps transA = new DeviceRuntime.GemmOps(true, false, false);

        DeviceBuffer dY = s.take((long) tokens * d);
        rt.copyIn(dOutput.toArray(), dY);

        // Stage 5 backward: combine
        DeviceBuffer dGate = s.take((long) tokens * k);
        rt.launch(Kernel.COMBINE_BACKWARD_GATES, Grid.linear((long) tokens * k), pass.out, pass.rowOf, pass.selected,
                bOut == null ? dummy : bOut, dY, dGate, tokens, k, d, bOut == null ? 0 : 1);
        DeviceBuffer dF = dummy;
        DeviceBuffer dA = dummy;
        DeviceBuffer dB = dummy;
        DeviceBuffer dXrows = dummy;
        DeviceBuffer xd = pass.xd == null ? dummy : pass.xd;
        DeviceBuffer hidden = pass.hidden == null ? dummy : pass.hidden;
        int[] start = pass.expertStart;
        if (rows > 0) {
            dF = s.take((long) rows * d);
            rt.launch(Kernel.COMBINE_BACKWARD_ROWS, Grid.linear((long) rows * d), pass.rowAssignment, pass.gate, dY, dF, rows, k, d);

            // Stage 4 backward: experts
            DeviceBuffer dHidden = s.take((long) rows * h);
            expertGemm(pass, transB, false, d, h, dF, d, 0, wOut, 0, (long) h * d, dHidden, h, 0);
            dA = s.take((long) rows * h);
            dB = gated ? s.take((long) rows * h) : dummy;
            rt.launch(Kernel.EXPERT_ACTIVATION_BACKWARD, Grid.linear((long) rows * h), pass.pre, pass.lin, bIn == null ? dummy : bIn,
                    pass.rowExpert, dHidden, dA, dB, rows, h, activationKind(config.activation()), gated ? 1 : 0, bIn == null ? 0 : 1);
            dXrows = s.take((long) rows * d);
            expertGemm(pass, transB, false, h, d, dA, h, 0, wIn, 0, (long) d * h, dXrows, d, 0);
            if (gated) {
                expertGemm(pass, transBAdd, false, h, d, dB, h, 0, wGate, 0, (long) d * h, dXrows, d, 0);
            }
        }
        DeviceBuffer dWIn = null;
        DeviceBuffer dWGate = null;
        DeviceBuffer dWOut = null;
        DeviceBuffer dBIn = null;
        DeviceBuffer dBOut = null;
        if (expertGrads) {
            dWIn = s.take((long) e * d * h);
            dWGate = gated ? s.take((long) e * d * h) : null;
            dWOut = s.take((long) e * h * d);
            // the weight gradients sum over an expert's rows; an empty slot's row is 0 in xd, dA, dB,
            // hidden and dF, so it adds exactly 0
            expertGemm(pass, transA, true, d, h, xd, d, 0, dA, h, 0, dWIn, 0, (long) d * h);
            if (gated) {
                expertGemm(pass, transA, true, d, h, xd, d, 0, dB, h, 0, dWGate, 0, (long) d * h);
            }
            expertGemm(pass, transA, true, h, d, hidden, h, 0, dF, d, 0, dWOut, 0, (long) h * d);
            if (bIn != null || bOut != null) {
                DeviceBuffer startBuf = s.take(e + 1L);
                rt.copyIn(start, startBuf);
                if (bIn != null) {
                    dBIn = s.take((long) e * h);
                    rt.launch(Kernel.SEGMENT_COLUMN_SUMS, Grid.linear((long) e * h), dA, startBuf, dBIn, e, h);
                }
                if (bOut != null) {
                    dBOut = s.take((long) e * d);
                    rt.launch(Kernel.SEGMENT_COLUMN_SUMS, Grid.linear((long) e * d), dF, startBuf, dBOut, e, d);
                }
            }
        }

        // Stages 6 and 2 backward: losses, gates, softmax
        float[] auxScale = new float[groups];
        float[] zScale = new float[groups];
        for (int g = 0; g < groups; g++) {
            int n = 0;
            for (int t = g * gs; t < (g + 1) * gs; t++) {
                n += pass.realHost[t];
            }
            if (n > 0) {
                auxScale[g] = router == null ? 0f : (float) (config.losses().aux() / groups * e / n);
                zScale[g] = (float) (config.losses().z() / groups * 2 / n);
            }
        }
        DeviceBuffer auxBuf = s.take(groups);
        rt.copyIn(auxScale, auxBuf);
        DeviceBuffer zBuf = s.take(groups);
        rt.copyIn(zScale, zBuf);
        DeviceBuffer dLogits = s.take((long) tokens * e);
        DeviceBuffer dRaw = null;
        if (noisy != null) {
            // ImportanceLoss and LoadLoss backward on the host, in double: c / G * dcv^2/dv of each group's vector
            float[] dImportance = new float[groups * e];
            float[] dLoad = new float[groups * e];
            for (int g = 0; g < groups; g++) {
                cvSquaredBackward(pass.importance, g * e, e, config.losses().importance() / groups, dImportance);
                if (pass.smooth) {
                    cvSquaredBackward(pass.loadVector, g * e, e, config.losses().load() / groups, dLoad);
                }
            }
            DeviceBuffer dImportanceBuf = s.take((long) groups * e);
            rt.copyIn(dImportance, dImportanceBuf);
            DeviceBuffer dLoadBuf = s.take((long) groups * e);
            rt.copyIn(dLoad, dLoadBuf);
            boolean learned = pass.sigma != null;
            DeviceBuffer dKeys = s.take((long) tokens * e);
            dRaw = learned ? s.take((long) tokens * e) : null;
            rt.launch(Kernel.NOISY_ROUTER_BACKWARD, Grid.linear(tokens), pass.probs, pass.lse, pass.logits, pass.keys,
                    learned ? pass.sigma : dummy, learned ? pass.eps : dummy, learned ? pass.raw : dummy, pass.selected, pass.slot,
                    pass.gateBefore, dGate, pass.smooth ? pass.kPlus1 : dummy, pass.real, zBuf, dImportanceBuf, dLoadBuf, dKeys, dLogits,
                    learned ? dRaw : dummy, tokens, e, k, gs, learned ? 1 : 0, pass.smooth ? 1 : 0);
        } else {
            DeviceBuffer dProbs = s.take((long) tokens * e);
            rt.launch(Kernel.ROUTER_BACKWARD, Grid.linear(tokens), pass.probs, pass.lse, pass.selected, pass.slot, pass.gateBefore,
                    pass.gate, dGate, pass.real, auxBuf, zBuf, pass.stats, dProbs, dLogits, tokens, e, k, gs, gatesKind());
        }

        // Stage 1 backward: router (and noise router) and input
        DeviceBuffer dRouterIn = s.take((long) tokens * d);
        rt.gemm(transB, tokens, d, e, dLogits, 0, wRouter, 0, dRouterIn, 0);
        if (dRaw != null) {
            // noisy top-k has no jitter: the noise router sees x, as the router does
            rt.gemm(transBAdd, tokens, d, e, dRaw, 0, wNoise, 0, dRouterIn, 0);
        }
        DeviceBuffer dx = s.take((long) tokens * d);
        rt.launch(Kernel.INPUT_GRADIENT, Grid.linear((long) tokens * d), dRouterIn, dXrows, pass.rowOf,
                pass.jitter == null ? dummy : pass.jitter, dx, tokens, k, d, pass.jitter == null ? 0 : 1, pass.expertsJittered ? 1 : 0);
        DeviceBuffer dWr = null;
        DeviceBuffer dBr = null;
        Tensor dWNoise = null;
        if (routerGrads) {
            dWr = s.take((long) d * e);
            rt.gemm(transA, d, e, tokens, pass.routerIn, 0, dLogits, 0, dWr, 0);
            if (noiseGrads) {
                // no noise in this pass (inference): W_noise did not touch the output or the losses
                DeviceBuffer dWn = null;
                if (dRaw != null) {
                    dWn = s.take((long) d * e);
                    rt.gemm(transA, d, e, tokens, pass.routerIn, 0, dRaw, 0, dWn, 0);
                }
                dWNoise = dWn == null ? Tensor.zeros(d, e) : download(dWn, d, e);
            }
            if (bRouter != null) {
                DeviceBuffer oneSegment = s.take(2);
                rt.copyIn(new int[] {0, tokens}, oneSegment);
                dBr = s.take(e);
                rt.launch(Kernel.SEGMENT_COLUMN_SUMS, Grid.linear(e), dLogits, oneSegment, dBr, 1, e);
            }
        }
        return new MoeGradients(download(dx, tokens, d), download(dWr, d, e), download(dBr, e), dWNoise, download(dWIn, e, d, h),
                download(dWGate, e, d, h), download(dWOut, e, h, d), download(dBIn, e, h), download(dBOut, e, d));
    }

    /** The first elements of a device buffer as a tensor of the given shape; null for a null buffer. */
    private Tensor download(DeviceBuffer b, int... shape) {
        if (b == null) {
            return null;
        }
        int n = 1;
        for (int dim : shape) {
            n *= dim;
        }
        float[] host = new float[n];
        backend.runtime().copyOut(b, host);
        return Tensor.of(host, shape);
    }

    private void requireOpen() {
        backend.requireOpen();
        if (closed) {
            throw new IllegalStateException("this cuda layer is closed");
        }
    }

    private void freeResident() {
        RuntimeException first = null;
        for (DeviceBuffer b : resident) {
            try {
                backend.runtime().free(b);
            } catch (RuntimeException e) {
                if (first == null) {
                    first = e;
                }
            }
        }
        resident.clear();
        if (first != null) {
            throw first;
        }
    }

    /** Frees the resident weights; closing twice is harmless. */
    @Override
    public void close() {
        synchronized (backend.lock()) {
            if (closed) {
                return;
            }
            closed = true;
            backend.forget(this);
            freeResident();
        }
    }
}

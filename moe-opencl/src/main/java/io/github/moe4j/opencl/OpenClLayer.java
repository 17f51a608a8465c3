package io.github.moe4j.opencl;

import com.aparapi.device.OpenCLDevice;
import io.github.moe4j.api.Activation;
import io.github.moe4j.api.AuxNormalization;
import io.github.moe4j.api.Checks;
import io.github.moe4j.api.ExpertChoiceRouterConfig;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.Freeze;
import io.github.moe4j.api.GateNormalization;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeGradients;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeLosses;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.NonFiniteException;
import io.github.moe4j.api.Mode;
import io.github.moe4j.api.PaddingPolicy;
import io.github.moe4j.api.Priority;
import io.github.moe4j.api.RenormTiming;
import io.github.moe4j.api.RouterNoise;
import io.github.moe4j.api.Routing;
import io.github.moe4j.api.SecondExpertPolicy;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * A token-choice MoE layer on an OpenCL device: one {@link MoeLayerKernel} (one OpenCL context)
 * per layer, in Aparapi's explicit mode. The weights are uploaded once, when the layer is made
 * (they are immutable, so never again; Aparapi itself re-creates a buffer from the Java array if
 * the GC moved that array, which for weights costs only the copy). A forward uploads the input and
 * the noise, runs every stage as one multi-pass launch (no host round trip between stages, and no
 * window in which a GC move could lose device-side intermediates), then downloads the output, the
 * routing and the losses.
 *
 * <p>Not thread-safe (by the {@link MoeLayer} contract).
 */
final class OpenClLayer implements MoeLayer {
    private final MoeConfig config;
    private final OpenCLDevice device;
    private final String description;
    private final Runnable onClose;
    private MoeLayerKernel kernel;
    private int allocatedTokens = -1;
    private boolean gradientsAllocated;
    /** Test hook: when set, each phase is its own launch, every array is read back after it, and the hook runs in between. */
    private Runnable betweenPhases;

    OpenClLayer(MoeConfig config, MoeWeights weights, OpenCLDevice device, String description, Runnable onClose) {
        this.config = config;
        this.device = device;
        this.description = description;
        this.onClose = onClose;
        MoeLayerKernel k = new MoeLayerKernel();
        k.setExplicit(true);
        k.modelDim = config.modelDim();
        k.hiddenDim = config.hiddenDim();
        k.experts = config.experts();
        k.topK = config.choicesPerToken();
        k.activation = activationCode(config.activation());
        k.gated = config.activation().isGated() ? 1 : 0;
        if (config.router() instanceof TokenChoiceRouterConfig router) {
            k.routerKind = MoeLayerKernel.ROUTER_TOKEN_CHOICE;
            k.gateMode = router.gates() == GateNormalization.NONE ? MoeLayerKernel.GATES_NONE
                    : router.renormTiming() == RenormTiming.BEFORE_CAPACITY ? MoeLayerKernel.GATES_RENORMALIZE_BEFORE
                    : MoeLayerKernel.GATES_RENORMALIZE_AFTER;
            k.jitterFeedsExperts = router.jitterTarget() == TokenChoiceRouterConfig.JitterTarget.ROUTER_AND_EXPERTS ? 1 : 0;
            k.secondExpertThreshold = (float) router.secondExpertPolicy().threshold();
        } else if (config.router() instanceof ExpertChoiceRouterConfig) {
            k.routerKind = MoeLayerKernel.ROUTER_EXPERT_CHOICE;
            k.gateMode = MoeLayerKernel.GATES_NONE;
            k.secondExpertThreshold = 1f;
        } else {
            // noisy top-k: G = softmax over the selected H, a dropped choice's gate zeroed (like renormalising before capacity)
            NoisyTopKRouterConfig noisy = (NoisyTopKRouterConfig) config.router();
            k.routerKind = MoeLayerKernel.ROUTER_NOISY_TOP_K;
            k.gateMode = MoeLayerKernel.GATES_RENORMALIZE_BEFORE;
            k.noiseEpsilon = (float) noisy.noiseEpsilon();
            k.secondExpertThreshold = 1f;
        }
        k.priority = config.router() instanceof ExpertChoiceRouterConfig ? MoeLayerKernel.PRIORITY_EXPERT_CHOICE
                : priorityCode(config.priority());
        k.auxNormalization = auxCode(config.losses().auxNormalization());
        k.hasRouterBias = config.routerBias() ? 1 : 0;
        k.hasExpertBias = config.expertBias() ? 1 : 0;
        k.paddingNotRouted = config.padding() == PaddingPolicy.NOT_ROUTED ? 1 : 0;
        k.wRouter = weights.router().toArray();
        k.bRouter = orOne(weights.routerBias());
        k.wIn = weights.wIn().toArray();
        k.wGate = orOne(weights.wGate());
        k.wOut = weights.wOut().toArray();
        k.bIn = orOne(weights.bIn());
        k.bOut = orOne(weights.bOut());
        k.wNoise = orOne(learnedNoise() ? weights.noiseRouter() : null);
        for (float[] w : new float[][] {k.wRouter, k.bRouter, k.wIn, k.wGate, k.wOut, k.bIn, k.bOut, k.wNoise}) {
            k.put(w);
        }
        this.kernel = k;
    }

    private boolean learnedNoise() {
        return config.router() instanceof NoisyTopKRouterConfig n && n.noise() == NoisyTopKRouterConfig.Noise.LEARNED;
    }

    private static float[] orOne(Tensor t) {
        return t == null ? new float[1] : t.toArray();
    }

    static int activationCode(Activation a) {
        switch (a) {
            case RELU:
                return MoeLayerKernel.ACT_RELU;
            case GELU:
            case GEGLU:
                return MoeLayerKernel.ACT_GELU;
            case GELU_TANH:
            case GEGLU_TANH:
                return MoeLayerKernel.ACT_GELU_TANH;
            case SILU:
            case SWIGLU:
                return MoeLayerKernel.ACT_SILU;
            default:
                throw new AssertionError(a);
        }
    }

    private static int priorityCode(Priority p) {
        switch (p) {
            case RANK_MAJOR:
                return MoeLayerKernel.PRIORITY_RANK_MAJOR;
            case TOKEN_MAJOR:
                return MoeLayerKernel.PRIORITY_TOKEN_MAJOR;
            case BATCH_PRIORITIZED:
                return MoeLayerKernel.PRIORITY_BATCH_PRIORITIZED;
            case GATE_VALUE:
                return MoeLayerKernel.PRIORITY_GATE_VALUE;
            default:
                throw new AssertionError(p);
        }
    }

    private static int auxCode(AuxNormalization n) {
        switch (n) {
            case TOP1:
                return MoeLayerKernel.AUX_TOP1;
            case TOPK_NORMALIZED:
                return MoeLayerKernel.AUX_TOPK_NORMALIZED;
            case TOPK_COUNT:
                return MoeLayerKernel.AUX_TOPK_COUNT;
            default:
                throw new AssertionError(n);
        }
    }

    @Override
    public MoeConfig config() {
        return config;
    }

    /** Chooses the GEMM version of every GEMM phase: true for the tiled one (default), false for the naive one. */
    void useTiledGemm(boolean tiled) {
        requireOpen().gemmTiled = tiled ? 1 : 0;
    }

    /** Test hook: run each phase as its own launch, read everything back, and run {@code hook} in between (null: one launch). */
    void betweenPhases(Runnable hook) {
        this.betweenPhases = hook;
    }

    private MoeLayerKernel requireOpen() {
        if (kernel == null) {
            throw new IllegalStateException("this OpenCL layer is closed");
        }
        return kernel;
    }

    @Override
    public MoeForward forward(Tensor input, ForwardOptions options) {
        MoeLayerKernel k = requireOpen();
        Checks.requireNonNull(input, "input");
        Checks.requireNonNull(options, "options");
        if (input.rank() != 2) {
            throw new IllegalArgumentException("input has shape " + Arrays.toString(input.shape())
                    + " but [tokens, modelDim] with modelDim = " + config.modelDim() + " was expected");
        }
        int tokens = input.dim(0);
        input.requireShape("input", "[tokens, modelDim]", tokens, config.modelDim()).requireFinite("input");
        options.validate(tokens);
        RouterNoise noise = options.noiseFor(config, tokens);
        int e = config.experts();
        int topK = config.choicesPerToken();
        int groups = options.groups();
        int groupSize = tokens / groups;
        int capacity = config.capacityPerExpert(groupSize);
        if (tokens == 0) {
            return new OpenClForward(this, Tensor.zeros(0, config.modelDim()),
                    new Routing(0, e, topK, groups, capacity, new int[0], new float[0], new int[0], new int[e], new int[e]),
                    MoeLosses.weighted(0, 0, 0, 0, config.losses()), input, options, noise);
        }
        int d = config.modelDim();
        int h = config.hiddenDim();
        long rows = (long) tokens * topK;
        if (rows * Math.max(h, d) > Integer.MAX_VALUE - 8 || (long) tokens * Math.max(d, e) > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("tokens = " + tokens + " is too large for one OpenCL call with k = " + topK
                    + ", modelDim = " + d + ", hiddenDim = " + h + " (dispatch buffers exceed a Java array); split the batch");
        }
        upload(k, input, options, noise, tokens, groups, capacity);
        int[] phases = forwardPhases(true);
        launch(k, phases, globalSize(k, phases), "the forward pass");
        k.get(k.logits);
        for (int i = 0; i < tokens * e; i++) {
            if (!Float.isFinite(k.logits[i])) {
                throw new NonFiniteException("router logits", i, new int[] {tokens, e}, k.logits[i]);
            }
        }
        k.get(k.y);
        k.get(k.selected);
        k.get(k.gate);
        k.get(k.slot);
        k.get(k.loadPerGroup);
        k.get(k.keptPerGroup);
        k.get(k.lossOut);
        int[] load = new int[e];
        int[] kept = new int[e];
        for (int g = 0; g < groups; g++) {
            for (int x = 0; x < e; x++) {
                load[x] += k.loadPerGroup[g * e + x];
                kept[x] += k.keptPerGroup[g * e + x];
            }
        }
        Routing routing = new Routing(tokens, e, topK, groups, capacity, Arrays.copyOf(k.selected, tokens * topK),
                Arrays.copyOf(k.gate, tokens * topK), Arrays.copyOf(k.slot, tokens * topK), load, kept);
        boolean tokenChoice = config.router() instanceof TokenChoiceRouterConfig;
        MoeLosses losses = MoeLosses.weighted(tokenChoice ? k.lossOut[0] : 0, k.lossOut[1], tokenChoice ? 0 : k.lossOut[2],
                tokenChoice ? 0 : k.lossOut[3], config.losses());
        return new OpenClForward(this, Tensor.of(Arrays.copyOf(k.y, tokens * d), tokens, d), routing, losses, input, options, noise);
    }

    /**
     * For {@link OpenClStages}: uploads the input and runs the forward's phases from the first through
     * the last phase of {@code stage}, as one launch, and reads nothing back. The caller has run
     * {@link #forward} on the same input and options once, which checked them.
     */
    void forwardThrough(Tensor input, ForwardOptions options, OpenClStages.Stage stage) {
        MoeLayerKernel k = requireOpen();
        int tokens = input.dim(0);
        int groups = options.groups();
        upload(k, input, options, options.noiseFor(config, tokens), tokens, groups, config.capacityPerExpert(tokens / groups));
        int[] phases = phasesThrough(stage);
        launch(k, phases, globalSize(k, phases), "the forward pass through the " + stage + " stage");
    }

    /** The forward's phases from the first through the last phase of {@code stage}, in launch order. */
    int[] phasesThrough(OpenClStages.Stage stage) {
        int last = switch (stage) {
            case ROUTER -> config.priority() == Priority.GATE_VALUE ? MoeLayerKernel.RENUMBER : MoeLayerKernel.POSITION;
            case DISPATCH -> MoeLayerKernel.DISPATCH;
            case EXPERTS -> MoeLayerKernel.EXPERT_OUT;
            case COMBINE -> MoeLayerKernel.COMBINE;
        };
        int[] all = forwardPhases(true);
        int n = 0;
        while (all[n] != last) {
            n++;
        }
        return Arrays.copyOf(all, n + 1);
    }

    /** For {@link OpenClStages}: the output y on the device, [tokens, modelDim], as the last launch through the combine left it. */
    Tensor downloadOutput(int tokens) {
        MoeLayerKernel k = requireOpen();
        k.get(k.y);
        return Tensor.of(Arrays.copyOf(k.y, tokens * config.modelDim()), tokens, config.modelDim());
    }

    /** Uploads one call's input, noise and mask and sets its sizes. */
    private void upload(MoeLayerKernel k, Tensor input, ForwardOptions options, RouterNoise noise, int tokens, int groups,
                        int capacity) {
        int d = config.modelDim();
        int groupSize = tokens / groups;
        allocate(k, tokens, groups);
        k.tokens = tokens;
        k.groups = groups;
        k.groupSize = groupSize;
        k.capacity = Math.min(capacity, groupSize);
        k.maxRowsPerExpert = k.capacity * groups;
        k.hasJitter = noise.jitter() != null ? 1 : 0;
        k.secondExpertRandom = noise.secondExpertUniform() != null ? 1 : 0;
        k.learnedNoise = learnedNoise() && options.mode() == Mode.TRAINING ? 1 : 0;
        k.smoothLoad = k.learnedNoise == 1 && config.topK() < config.experts() ? 1 : 0;
        if (k.learnedNoise == 1) {
            k.logitNoise = noise.logitNoise().toArray();
            k.put(k.logitNoise);
        }
        System.arraycopy(input.toArray(), 0, k.x, 0, tokens * d);
        k.put(k.x);
        if (noise.jitter() != null) {
            k.jitter = noise.jitter().toArray();
            k.put(k.jitter);
        }
        if (noise.secondExpertUniform() != null) {
            k.uniforms = noise.secondExpertUniform().toArray();
            k.put(k.uniforms);
        }
        k.mask = options.paddingMask() == null ? filled(tokens, 1f) : options.paddingMask().toArray();
        k.put(k.mask);
    }

    /** The forward phases; without the combine and the loss total when only backward needs them. */
    private int[] forwardPhases(boolean wholeForward) {
        List<Integer> p = new ArrayList<>(List.of(MoeLayerKernel.ROUTER, MoeLayerKernel.SELECT, MoeLayerKernel.POSITION));
        if (config.priority() == Priority.GATE_VALUE) {
            p.add(MoeLayerKernel.RENUMBER);
        }
        p.addAll(List.of(MoeLayerKernel.COUNT, MoeLayerKernel.OFFSETS, MoeLayerKernel.DISPATCH, MoeLayerKernel.EXPERT_IN,
                MoeLayerKernel.EXPERT_OUT));
        if (wholeForward) {
            p.add(MoeLayerKernel.COMBINE);
        }
        p.add(MoeLayerKernel.LOSS_GROUP);
        if (wholeForward) {
            p.add(MoeLayerKernel.LOSS_TOTAL);
        }
        return p.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Runs {@code phases} as the passes of one launch (or, under the test hook, one launch each with full read-backs). */
    private void launch(MoeLayerKernel k, int[] phases, int global, String what) {
        k.passPhase = phases;
        k.put(k.passPhase);
        if (betweenPhases == null) {
            k.phaseBase = 0;
            KernelLaunches.execute(k, device, description, global, MoeLayerKernel.LOCAL_SIZE, phases.length, what);
            return;
        }
        for (int p = 0; p < phases.length; p++) {
            k.phaseBase = p;
            KernelLaunches.execute(k, device, description, global, MoeLayerKernel.LOCAL_SIZE, 1, what + ", phase " + phases[p]);
            for (float[] a : k.floatBuffers()) {
                k.get(a);
            }
            for (int[] a : k.intBuffers()) {
                k.get(a);
            }
            betweenPhases.run();
        }
    }

    private static float[] filled(int n, float v) {
        float[] a = new float[n];
        Arrays.fill(a, v);
        return a;
    }

    /** (Re)allocates the per-call arrays when the number of tokens or groups changes. */
    private void allocate(MoeLayerKernel k, int tokens, int groups) {
        if (tokens == allocatedTokens && k.zPerGroup.length == groups) {
            return;
        }
        int d = config.modelDim();
        int h = config.hiddenDim();
        int e = config.experts();
        int m = tokens * config.choicesPerToken();
        k.x = new float[tokens * d];
        k.jitter = new float[1];
        k.uniforms = new float[1];
        k.logits = new float[tokens * e];
        k.probs = new float[tokens * e];
        k.lse = new float[tokens];
        k.selected = new int[m];
        k.gateBefore = new float[m];
        k.priorityGate = new float[m];
        k.policyDropped = new int[m];
        k.position = new int[m];
        k.slot = new int[m];
        k.gate = new float[m];
        k.rowOf = new int[m];
        k.tokenOfRow = new int[m];
        k.loadPerGroup = new int[groups * e];
        k.keptPerGroup = new int[groups * e];
        k.rowBase = new int[groups * e];
        k.expertRowStart = new int[e];
        k.expertRows = new int[e];
        k.preActivation = new float[m * h];
        k.gateLinear = config.activation().isGated() ? new float[m * h] : new float[1];
        k.hidden = new float[m * h];
        k.expertOut = new float[m * d];
        k.y = new float[tokens * d];
        k.auxTerms = new float[groups * e];
        k.auxFraction = new float[groups * e];
        k.zPerGroup = new float[groups];
        k.realPerGroup = new int[groups];
        k.assignmentOfRow = new int[m];
        k.keys = new float[tokens * e];
        k.logitNoise = new float[1];
        boolean learned = learnedNoise();
        k.rawStd = learned ? new float[tokens * e] : new float[1];
        k.sigma = learned ? new float[tokens * e] : new float[1];
        k.probInTopK = learned ? new float[tokens * e] : new float[1];
        k.topOrder = new int[tokens * (config.choicesPerToken() + 1)];
        k.importance = new float[groups * e];
        k.loadVector = new float[groups * e];
        allocatedTokens = tokens;
    }

    /** (Re)allocates the arrays only backward uses, so that inference never pays for them. */
    private void allocateBackward(MoeLayerKernel k, int tokens) {
        int d = config.modelDim();
        int h = config.hiddenDim();
        int e = config.experts();
        int m = tokens * config.choicesPerToken();
        if (k.dY.length != tokens * d || k.dX.length != tokens * d) {
            k.dY = new float[tokens * d];
            k.dRowInput = new float[Math.max(1, m * d)];
            k.dExpertInput = new float[tokens * d];
            k.dX = new float[tokens * d];
        }
        if (k.dGate.length != m) {
            k.dGate = new float[m];
        }
        if (k.dPreActivation.length != Math.max(1, m * h)) {
            k.dPreActivation = new float[Math.max(1, m * h)];
            k.dGateLinear = config.activation().isGated() ? new float[Math.max(1, m * h)] : new float[1];
        }
        if (k.dLogits.length != tokens * e || k.dProbs.length != tokens * e) {
            k.dLogits = new float[tokens * e];
            k.dProbs = new float[tokens * e];
        }
        if (config.router() instanceof NoisyTopKRouterConfig) {
            k.dImportance = new float[k.importance.length];
            k.dLoad = new float[k.importance.length];
            k.dKeys = new float[tokens * e];
            k.dSigma = new float[tokens * e];
            k.dRawStd = learnedNoise() ? new float[tokens * e] : new float[1];
        }
        if (!gradientsAllocated) {
            gradientsAllocated = true;
            k.gWRouter = new float[d * e];
            k.gBRouter = new float[e];
            k.gWIn = new float[e * d * h];
            k.gWGate = config.activation().isGated() ? new float[e * d * h] : new float[1];
            k.gWOut = new float[e * h * d];
            k.gBIn = new float[e * h];
            k.gBOut = new float[e * d];
            k.gWNoise = new float[d * e];
        }
    }

    /**
     * Work-items for {@code phases}: one per element of the largest non-GEMM phase (each guards its own count), and
     * what the largest GEMM needs ({@link MoeLayerKernel#gemmWorkItems}), rounded up to whole work-groups.
     */
    private int globalSize(MoeLayerKernel k, int[] phases) {
        int d = config.modelDim();
        int h = config.hiddenDim();
        int e = config.experts();
        long n = Math.max((long) k.tokens * Math.max(e, d), (long) e * Math.max(k.groups, Math.max(h, d)));
        for (int p : phases) {
            if (k.isGemm(p) == 1) {
                n = Math.max(n, k.gemmWorkItems(p));
            }
        }
        long global = (n + MoeLayerKernel.LOCAL_SIZE - 1) / MoeLayerKernel.LOCAL_SIZE * MoeLayerKernel.LOCAL_SIZE;
        if (global > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("tokens = " + k.tokens + " needs " + global
                    + " work-items, more than one launch takes; split the batch");
        }
        return (int) global;
    }

    /**
     * {@inheritDoc}
     *
     * <p>Replays the forward's routing and expert stages from the forward's own input and noise
     * (deterministic, so bit for bit the same routing, which is checked) and runs the backward
     * stages in the same launch, so nothing has to stay resident on the device between the calls.
     * Weight gradients are (tiled) GEMMs over the rows that touch them, each element owned by one
     * work-item that sums in row order: no float atomics, and a repeat is bit-identical. A frozen
     * group's phases are not launched.
     *
     * @throws IllegalArgumentException if {@code forward} did not come from this layer, or {@code dOutput} is not [T, d]
     * @throws NonFiniteException       if {@code dOutput} holds a NaN or infinity
     */
    @Override
    public MoeGradients backward(MoeForward forward, Tensor dOutput, Set<Freeze> frozen) {
        MoeLayerKernel k = requireOpen();
        Checks.requireNonNull(forward, "forward");
        Checks.requireNonNull(dOutput, "dOutput");
        Checks.requireNonNull(frozen, "frozen");
        if (!(forward instanceof OpenClForward f) || f.layer() != this) {
            throw new IllegalArgumentException("forward was not returned by this layer's forward (it came from "
                    + (forward instanceof OpenClForward ? "another OpenCL layer" : forward.getClass().getName())
                    + "). Hint: pass backward the MoeForward that this layer's forward returned");
        }
        int tokens = f.input().dim(0);
        int d = config.modelDim();
        int h = config.hiddenDim();
        int e = config.experts();
        dOutput.requireShape("dOutput", "[tokens, modelDim]", tokens, d).requireFinite("dOutput");
        boolean router = !frozen.contains(Freeze.ROUTER);
        boolean experts = !frozen.contains(Freeze.EXPERTS);
        boolean gatedKind = config.activation().isGated();
        boolean expertBias = config.expertBias();
        if (tokens == 0) {
            return new MoeGradients(Tensor.zeros(0, d), router ? Tensor.zeros(d, e) : null,
                    router && config.routerBias() ? Tensor.zeros(e) : null, router && learnedNoise() ? Tensor.zeros(d, e) : null,
                    experts ? Tensor.zeros(e, d, h) : null, experts && gatedKind ? Tensor.zeros(e, d, h) : null,
                    experts ? Tensor.zeros(e, h, d) : null, experts && expertBias ? Tensor.zeros(e, h) : null,
                    experts && expertBias ? Tensor.zeros(e, d) : null);
        }
        int groups = f.options().groups();
        int capacity = config.capacityPerExpert(tokens / groups);
        upload(k, f.input(), f.options(), f.noise(), tokens, groups, capacity);
        allocateBackward(k, tokens);
        System.arraycopy(dOutput.toArray(), 0, k.dY, 0, tokens * d);
        k.put(k.dY);
        k.auxCoefficient = (float) (config.losses().aux() / groups);
        k.zCoefficient = (float) (config.losses().z() / groups);
        boolean noisy = config.router() instanceof NoisyTopKRouterConfig;
        if (!(config.router() instanceof TokenChoiceRouterConfig)) {
            k.auxCoefficient = 0f;
        }
        if (noisy) {
            k.auxCoefficient = 0f;
            k.importanceCoefficient = (float) (config.losses().importance() / groups);
            k.loadCoefficient = (float) (config.losses().load() / groups);
        }
        List<Integer> phases = new ArrayList<>();
        for (int p : forwardPhases(false)) {
            phases.add(p);
        }
        phases.addAll(List.of(MoeLayerKernel.BACK_GATE, MoeLayerKernel.BACK_HIDDEN, MoeLayerKernel.BACK_EXPERT_ROWS,
                MoeLayerKernel.BACK_EXPERT_INPUT));
        if (experts) {
            phases.addAll(List.of(MoeLayerKernel.GRAD_W_OUT, MoeLayerKernel.GRAD_W_IN));
            if (expertBias) {
                phases.addAll(List.of(MoeLayerKernel.GRAD_B_OUT, MoeLayerKernel.GRAD_B_IN));
            }
        }
        if (noisy) {
            phases.add(MoeLayerKernel.CV_BACK);
        }
        phases.addAll(List.of(MoeLayerKernel.BACK_ROUTING, MoeLayerKernel.BACK_INPUT));
        if (router) {
            phases.add(MoeLayerKernel.GRAD_ROUTER);
            if (config.routerBias()) {
                phases.add(MoeLayerKernel.GRAD_ROUTER_BIAS);
            }
            if (k.learnedNoise == 1) {
                phases.add(MoeLayerKernel.GRAD_NOISE);
            }
        }
        int[] backwardPhases = phases.stream().mapToInt(Integer::intValue).toArray();
        launch(k, backwardPhases, globalSize(k, backwardPhases), "the backward pass");
        k.get(k.slot);
        k.get(k.selected);
        if (!Arrays.equals(Arrays.copyOf(k.slot, tokens * config.choicesPerToken()), f.routing().slots())
                || !Arrays.equals(Arrays.copyOf(k.selected, tokens * config.choicesPerToken()), f.routing().experts2d())) {
            throw new IllegalStateException("replaying the forward for backward routed differently on " + description
                    + "; the device is not deterministic, so its gradients cannot be trusted");
        }
        k.get(k.dX);
        Tensor dx = Tensor.of(Arrays.copyOf(k.dX, tokens * d), tokens, d);
        Tensor wr = null;
        Tensor br = null;
        Tensor wn = null;
        if (router && learnedNoise()) {
            // without noise (inference) nothing reaches W_noise
            wn = k.learnedNoise == 1 ? Tensor.of(download(k, k.gWNoise), d, e) : Tensor.zeros(d, e);
        }
        if (router) {
            wr = Tensor.of(download(k, k.gWRouter), d, e);
            if (config.routerBias()) {
                br = Tensor.of(download(k, k.gBRouter), e);
            }
        }
        Tensor win = null;
        Tensor wgate = null;
        Tensor wout = null;
        Tensor bin = null;
        Tensor bout = null;
        if (experts) {
            win = Tensor.of(download(k, k.gWIn), e, d, h);
            wout = Tensor.of(download(k, k.gWOut), e, h, d);
            if (gatedKind) {
                wgate = Tensor.of(download(k, k.gWGate), e, d, h);
            }
            if (expertBias) {
                bin = Tensor.of(download(k, k.gBIn), e, h);
                bout = Tensor.of(download(k, k.gBOut), e, d);
            }
        }
        return new MoeGradients(dx, wr, br, wn, win, wgate, wout, bin, bout);
    }

    private static float[] download(MoeLayerKernel k, float[] a) {
        k.get(a);
        return a.clone();
    }

    @Override
    public void close() {
        MoeLayerKernel k = kernel;
        kernel = null;
        if (k != null) {
            k.dispose();
            onClose.run();
        }
    }

    boolean isClosed() {
        return kernel == null;
    }

    /**
     * The forward result: everything is on the host, nothing is kept on the device; the input,
     * options and noise are kept so that backward can replay the forward stages.
     */
    record OpenClForward(OpenClLayer layer, Tensor output, Routing routing, MoeLosses losses, Tensor input,
                         ForwardOptions options, RouterNoise noise) implements MoeForward {
        @Override
        public void close() {
            // nothing kept on the device
        }
    }
}

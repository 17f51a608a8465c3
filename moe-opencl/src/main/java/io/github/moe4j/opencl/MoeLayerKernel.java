package io.github.moe4j.opencl;

import com.aparapi.Kernel;

/**
 * The whole token-choice forward pass of one MoE layer as one Aparapi kernel: every stage is a
 * phase of {@link #run()}, and {@link OpenClLayer} runs the phases as the passes of one
 * {@code execute(range, passes)} call, so intermediate results stay on the device between stages
 * and no host round trip (and no GC move of a Java array, research java-gpu.md §2.1) can come
 * between them. One kernel object per layer: Aparapi gives every {@code Kernel} its own OpenCL
 * context, so the phases must share one object to share buffers.
 *
 * <p>Phases, each mirroring a stage of {@code io.github.moe4j.reference.ReferenceLayer} (float32
 * here, double there):
 * <table>
 * <caption>Phases and the reference methods they mirror</caption>
 * <tr><th>phase</th><th>work-items</th><th>mirrors</th></tr>
 * <tr><td>{@link #ROUTER}</td><td>GEMM tiles</td><td>{@code ReferenceLayer#router}: \( z = \tilde{x} W_r + b_r \), \( \tilde{x} = x \odot u \)</td></tr>
 * <tr><td>{@link #SELECT}</td><td>T</td><td>{@code Softmax#rows}, {@code TopK#ofRow}, {@code TokenChoiceRouter#gatesBeforeCapacity},
 *     {@code TokenChoiceRouter#keepsSecondExpert}</td></tr>
 * <tr><td>{@link #POSITION}</td><td>T·k</td><td>{@code CapacityAssigner#assign}: position of each assignment in its expert's priority order</td></tr>
 * <tr><td>{@link #RENUMBER}</td><td>T·k</td><td>{@code CapacityAssigner#renumberInTokenOrder} ({@code GATE_VALUE} only)</td></tr>
 * <tr><td>{@link #COUNT}</td><td>G·E</td><td>{@code Routing#load}, {@code Routing#kept} per group</td></tr>
 * <tr><td>{@link #OFFSETS}</td><td>1</td><td>{@code ReferenceLayer#dispatch}: where each expert's rows start, in (group, slot) order</td></tr>
 * <tr><td>{@link #DISPATCH}</td><td>T</td><td>{@code TokenChoiceRouter#gatesAfterCapacity} and {@code ReferenceLayer#dispatch} (index dispatch: row → token)</td></tr>
 * <tr><td>{@link #EXPERT_IN}</td><td>GEMM tiles</td><td>{@code ExpertNetwork#forward}, first half: \( \phi(x W_{in} + b_{in}) \odot x W_{gate} \)</td></tr>
 * <tr><td>{@link #EXPERT_OUT}</td><td>GEMM tiles</td><td>{@code ExpertNetwork#forward}, second half: \( \mathit{hidden}\, W_{out} + b_{out} \)</td></tr>
 * <tr><td>{@link #COMBINE}</td><td>T·d</td><td>{@code ReferenceLayer#combine}: gather in rank order, no atomics</td></tr>
 * <tr><td>{@link #LOSS_GROUP}</td><td>G·E</td><td>{@code LoadBalancingLoss#dispatchFraction}, {@code #meanProbability}, {@code RouterZLoss#value}</td></tr>
 * <tr><td>{@link #LOSS_TOTAL}</td><td>1</td><td>{@code ReferenceLayer#losses}: averages over groups</td></tr>
 * </table>
 *
 * <p>Backward ({@link OpenClLayer#backward}) replays the forward phases up to {@link #LOSS_GROUP}
 * (without {@link #COMBINE}) and continues in the same launch with {@link #BACK_GATE} (T·k),
 * {@link #BACK_HIDDEN} (per expert: \( (g\,dY) W_{out}^\top \), then \( \phi' \)), {@link #BACK_EXPERT_ROWS}
 * (per expert: \( \partial L / \partial a\, W_{in}^\top + \partial L / \partial b\, W_{gate}^\top \) per dispatch row),
 * {@link #BACK_EXPERT_INPUT} (T·d: each token's rows, rank order), the expert weight gradients
 * {@link #GRAD_W_OUT} (\( \mathit{hidden}^\top (g\,dY) \)), {@link #GRAD_W_IN} (\( x^\top \partial L / \partial a \) and
 * \( x^\top \partial L / \partial b \) for W_gate), {@link #GRAD_B_OUT}, {@link #GRAD_B_IN}, {@link #BACK_ROUTING} (T),
 * {@link #BACK_INPUT} (\( \partial L / \partial z\, W_r^\top \), with learned noise also through W_noise) and the
 * router's {@link #GRAD_ROUTER} (\( \tilde{x}^\top \partial L / \partial z \)), {@link #GRAD_NOISE},
 * {@link #GRAD_ROUTER_BIAS}, mirroring {@code ReferenceLayer#expertsBackward}, {@code #routingBackward} and
 * {@code #routerBackward}. Each output element is owned by one work-item, which sums what touches it in a fixed
 * order: no atomics, bit-identical on repeat.
 *
 * <p>The GEMM phases ({@link #isGemm}: {@link #ROUTER}, {@link #EXPERT_IN}, {@link #EXPERT_OUT}, {@link #BACK_HIDDEN},
 * {@link #BACK_EXPERT_ROWS}, {@link #GRAD_W_OUT}, {@link #GRAD_W_IN}, {@link #BACK_INPUT}, {@link #GRAD_ROUTER},
 * {@link #GRAD_NOISE}) are one product each (two for W_gate and W_noise), described by shape functions, operand
 * fetches and a store per phase, and run by one of two engines ({@link #gemmTiled}): 0 is naive (one work-item per
 * output element reading its operands from global memory), the debugging baseline the tests check the tiled one
 * against; 1 (default) is tiled, the operand tiles staged in local memory and zero-padded (a weight gradient sums
 * over however many rows its expert got). Both run in {@link #gemm}, one work-group per {@value #TILE}×{@value #TILE}
 * output tile, and sum over the inner dimension in increasing index order, so they add the same products in the
 * same order.
 *
 * <p>Kernel-language rules it keeps (research java-gpu.md §2.2): no {@code switch}, {@code break},
 * {@code continue}, {@code new} or double literal in {@link #run()}; math only through
 * {@link Kernel}'s float methods; integer codes instead of enums; the {@code @Local} tiles are fields
 * used only inside {@link #gemm}, never passed to a method; the global range is one
 * dimension with local size {@value #LOCAL_SIZE}, shared by every pass, and each phase guards its
 * own work-item count. Layout: all arrays row-major; T = tokens, d = model dim, h = hidden dim,
 * E = experts, k = experts per token, G = groups, R = T·k rows of the dispatch buffers.
 */
final class MoeLayerKernel extends Kernel {
    /** Edge of a GEMM tile. */
    static final int TILE = 16;
    /** Work-group size of every launch: one GEMM tile. */
    static final int LOCAL_SIZE = TILE * TILE;

    // phases
    static final int ROUTER = 0;
    static final int SELECT = 1;
    static final int POSITION = 2;
    static final int RENUMBER = 3;
    static final int COUNT = 4;
    static final int OFFSETS = 5;
    static final int DISPATCH = 6;
    static final int EXPERT_IN = 7;
    static final int EXPERT_OUT = 8;
    static final int COMBINE = 9;
    static final int LOSS_GROUP = 10;
    static final int LOSS_TOTAL = 11;
    // backward phases
    static final int BACK_GATE = 12;
    static final int BACK_HIDDEN = 13;
    static final int BACK_EXPERT_INPUT = 14;
    static final int GRAD_W_OUT = 15;
    static final int GRAD_B_OUT = 16;
    static final int GRAD_W_IN = 17;
    static final int GRAD_B_IN = 18;
    static final int BACK_ROUTING = 19;
    static final int BACK_INPUT = 20;
    static final int GRAD_ROUTER = 21;
    static final int GRAD_ROUTER_BIAS = 22;
    static final int CV_BACK = 23;
    static final int GRAD_NOISE = 24;
    static final int BACK_EXPERT_ROWS = 25;

    // router kinds
    static final int ROUTER_TOKEN_CHOICE = 0;
    static final int ROUTER_NOISY_TOP_K = 1;
    /** Expert choice: topK is E, assignment (t, e) is expert e's, and only the taken ones keep selected = e. */
    static final int ROUTER_EXPERT_CHOICE = 2;

    // activation codes (the gated kinds use their base nonlinearity and set gated = 1)
    static final int ACT_RELU = 0;
    static final int ACT_GELU = 1;
    static final int ACT_GELU_TANH = 2;
    static final int ACT_SILU = 3;

    // gate modes
    static final int GATES_NONE = 0;
    static final int GATES_RENORMALIZE_BEFORE = 1;
    static final int GATES_RENORMALIZE_AFTER = 2;

    // priorities
    static final int PRIORITY_RANK_MAJOR = 0;
    static final int PRIORITY_TOKEN_MAJOR = 1;
    static final int PRIORITY_BATCH_PRIORITIZED = 2;
    static final int PRIORITY_GATE_VALUE = 3;
    /** Expert choice: per expert by (s descending, token); the slot is the position. */
    static final int PRIORITY_EXPERT_CHOICE = 4;

    // aux normalisations
    static final int AUX_TOP1 = 0;
    static final int AUX_TOPK_NORMALIZED = 1;
    static final int AUX_TOPK_COUNT = 2;

    // ---- sizes and options (scalars travel as kernel arguments on every launch)
    int tokens;
    int modelDim;
    int hiddenDim;
    int experts;
    int topK;
    int groups;
    int groupSize;
    /** C per expert and group, at most the group size (dropless: the group size). */
    int capacity;
    /** Upper bound on one expert's kept rows: capacity · G. */
    int maxRowsPerExpert;
    int activation;
    int gated;
    int gateMode;
    int priority;
    int auxNormalization;
    int hasRouterBias;
    int hasExpertBias;
    int hasJitter;
    int jitterFeedsExperts;
    int paddingNotRouted;
    int secondExpertRandom;
    float secondExpertThreshold;
    /** 1 for the tiled GEMMs, 0 for the naive ones. */
    int gemmTiled = 1;
    /** The phase of pass p is {@code passPhase[phaseBase + p]}. */
    int phaseBase;
    /** Backward: the aux loss's coefficient divided by G (the loss is averaged over groups). */
    float auxCoefficient;
    /** Backward: the z-loss's coefficient divided by G. */
    float zCoefficient;
    /** Backward: the importance loss's coefficient divided by G (noisy top-k). */
    float importanceCoefficient;
    /** Backward: the load loss's coefficient divided by G (noisy top-k). */
    float loadCoefficient;
    /** {@link #ROUTER_TOKEN_CHOICE} or {@link #ROUTER_NOISY_TOP_K}. */
    int routerKind;
    /** Noisy top-k with learned noise, in training: \( H = z + \varepsilon \odot \sigma \). */
    int learnedNoise;
    /** Noisy top-k, learned noise, training, k &lt; E: the smooth load estimator P(t, i). */
    int smoothLoad;
    /** \( \epsilon_0 \) of \( \sigma = \operatorname{softplus}(x W_{noise}) + \epsilon_0 \). */
    float noiseEpsilon;

    // ---- inputs
    int[] passPhase = new int[1];
    /** [T, d] input. */
    float[] x = new float[1];
    /** [T, d] jitter multipliers u (when hasJitter). */
    float[] jitter = new float[1];
    /** [T] 1 for a real token, 0 for padding. */
    float[] mask = new float[1];
    /** [T] uniforms of GShard's random second-expert policy (when secondExpertRandom). */
    float[] uniforms = new float[1];

    // ---- weights (uploaded once per layer)
    /** [d, E]. */
    float[] wRouter = new float[1];
    /** [E]. */
    float[] bRouter = new float[1];
    /** [E, d, h]. */
    float[] wIn = new float[1];
    /** [E, d, h] (gated kinds). */
    float[] wGate = new float[1];
    /** [E, h, d]. */
    float[] wOut = new float[1];
    /** [E, h]. */
    float[] bIn = new float[1];
    /** [d, E] W_noise (noisy top-k, learned noise). */
    float[] wNoise = new float[1];
    /** [E, d]. */
    float[] bOut = new float[1];

    // ---- routing
    /** [T, E] logits z. */
    float[] logits = new float[1];
    /** [T, E] selection keys: z, or H = z + εσ for noisy top-k with learned noise in training. */
    float[] keys = new float[1];
    /** [T, E] ε, the seeded logit noise (learned noise, training). */
    float[] logitNoise = new float[1];
    /** [T, E] \( x W_{noise} \). */
    float[] rawStd = new float[1];
    /** [T, E] \( \sigma = \operatorname{softplus}(x W_{noise}) + \epsilon_0 \). */
    float[] sigma = new float[1];
    /** [T, k + 1] the top k (+ 1 with the smooth load) keys, best first, routed or not. */
    int[] topOrder = new int[1];
    /** [T, E] P(t, i) of the smooth load estimator. */
    float[] probInTopK = new float[1];
    /** [G, E] Importance (noisy top-k). */
    float[] importance = new float[1];
    /** [G, E] Load (noisy top-k): smooth or counted. */
    float[] loadVector = new float[1];
    /** [T, E] p = softmax(z). */
    float[] probs = new float[1];
    /** [T] lse(z_t). */
    float[] lse = new float[1];
    /** [T, k] selected experts, best first; -1 for a token that is not routed. */
    int[] selected = new int[1];
    /** [T, k] gates before capacity. */
    float[] gateBefore = new float[1];
    /** [T, k] the value {@code GATE_VALUE} ranks by. */
    float[] priorityGate = new float[1];
    /** [T, k] 1 where GShard's random policy dropped the choice. */
    int[] policyDropped = new int[1];
    /** [T, k] position of the assignment in its expert's priority order, -1 if it asks for no slot. */
    int[] position = new int[1];
    /** [T, k] capacity slot, -1 if dropped. */
    int[] slot = new int[1];
    /** [T, k] combine weights. */
    float[] gate = new float[1];
    /** [G, E] assignments chosen, before capacity. */
    int[] loadPerGroup = new int[1];
    /** [G, E] assignments kept. */
    int[] keptPerGroup = new int[1];
    /** [E, G] first dispatch row of expert e's kept assignments of group g. */
    int[] rowBase = new int[1];
    /** [E] first dispatch row of expert e. */
    int[] expertRowStart = new int[1];
    /** [E] kept rows of expert e. */
    int[] expertRows = new int[1];
    /** [T, k] dispatch row of each kept assignment, -1 if dropped. */
    int[] rowOf = new int[1];
    /** [R] the token each dispatch row holds. */
    int[] tokenOfRow = new int[1];

    // ---- experts
    /** [R, h] \( a = x W_{in} + b_{in} \). */
    float[] preActivation = new float[1];
    /** [R, h] \( x W_{gate} \) (gated kinds). */
    float[] gateLinear = new float[1];
    /** [R, h] \( \phi(a) \) or \( \phi(a) \odot x W_{gate} \). */
    float[] hidden = new float[1];
    /** [R, d] \( f_e(x) \) of each row. */
    float[] expertOut = new float[1];
    /** [T, d] the layer's output. */
    float[] y = new float[1];

    // ---- losses
    /** [G, E] \( f_i P_i \) of each group. */
    float[] auxTerms = new float[1];
    /** [G] mean lse² over each group's real tokens. */
    float[] zPerGroup = new float[1];
    /** [4] aux (= E Σ f P), z, importance cv² and load cv², each averaged over groups, unweighted. */
    float[] lossOut = new float[4];

    /** [G, E] f of each group (dispatch fraction, constant in backward). */
    float[] auxFraction = new float[1];
    /** [G] real tokens of each group. */
    int[] realPerGroup = new int[1];
    /** [R] the assignment (t·k + rank) each dispatch row holds. */
    int[] assignmentOfRow = new int[1];

    // ---- backward (mirrors ReferenceLayer#backward: expertsBackward, routingBackward, routerBackward)
    /** [T, d] \( \partial L / \partial y \). */
    float[] dY = new float[1];
    /** [T, k] \( \partial L / \partial g \) from the combine. */
    float[] dGate = new float[1];
    /** [R, h] \( \partial L / \partial a \) (pre-activation). */
    float[] dPreActivation = new float[1];
    /** [R, h] \( \partial L / \partial (x W_{gate}) \) (gated kinds). */
    float[] dGateLinear = new float[1];
    /** [R, d] what each dispatch row sends back to its token's input. */
    float[] dRowInput = new float[1];
    /** [T, d] what the experts send back to their inputs. */
    float[] dExpertInput = new float[1];
    /** [T, E] \( \partial L / \partial p \) (scratch of the routing backward). */
    float[] dProbs = new float[1];
    /** [T, E] \( \partial L / \partial z \). */
    float[] dLogits = new float[1];
    /** [T, d] \( \partial L / \partial x \). */
    float[] dX = new float[1];
    /** [G, E] \( \partial L / \partial \mathrm{Importance} \), \( \partial L / \partial \mathrm{Load} \) (noisy top-k). */
    float[] dImportance = new float[1];
    float[] dLoad = new float[1];
    /** [T, E] \( \partial L / \partial H \), \( \partial L / \partial \sigma \), \( \partial L / \partial (x W_{noise}) \) (noisy top-k). */
    float[] dKeys = new float[1];
    float[] dSigma = new float[1];
    float[] dRawStd = new float[1];
    /** [d, E] \( \partial L / \partial W_{noise} \). */
    float[] gWNoise = new float[1];
    /** Weight gradients, each in its weight's layout. */
    float[] gWRouter = new float[1];
    float[] gBRouter = new float[1];
    float[] gWIn = new float[1];
    float[] gWGate = new float[1];
    float[] gWOut = new float[1];
    float[] gBIn = new float[1];
    float[] gBOut = new float[1];

    @Local
    float[] tileA = new float[LOCAL_SIZE];
    @Local
    float[] tileB = new float[LOCAL_SIZE];
    @Local
    float[] tileC = new float[LOCAL_SIZE];
    @Local
    float[] tileD = new float[LOCAL_SIZE];

    /** Every global float array, for a full read-back (not used by {@link #run()}). */
    float[][] floatBuffers() {
        return new float[][] {x, jitter, mask, uniforms, logits, probs, lse, gateBefore, priorityGate, gate, preActivation,
            gateLinear, hidden, expertOut, y, auxTerms, zPerGroup, lossOut, auxFraction, dY, dGate, dPreActivation, dGateLinear,
            dRowInput, dExpertInput, dProbs, dLogits, dX, gWRouter, gBRouter, gWIn, gWGate, gWOut, gBIn, gBOut, keys, logitNoise, rawStd, sigma,
            probInTopK, importance, loadVector, dImportance, dLoad, dKeys, dSigma, dRawStd, gWNoise};
    }

    /** Every global int array that the kernel writes, for a full read-back (not used by {@link #run()}). */
    int[][] intBuffers() {
        return new int[][] {selected, policyDropped, position, slot, loadPerGroup, keptPerGroup, rowBase, expertRowStart,
            expertRows, rowOf, tokenOfRow, realPerGroup, assignmentOfRow, topOrder};
    }

    @Override
    public void run() {
        // one plain if per phase: Aparapi 3.0.0 cannot fold an else-if chain with nested ifs.
        // No integer division may see a zero divisor: on a CPU device (PoCL) it raises SIGFPE and
        // kills the JVM, so the GEMM phases (which divide by the row-tile count) need a row.
        int phase = passPhase[phaseBase + getPassId()];
        int gid = getGlobalId();
        if (isGemm(phase) == 1 && gemmRowBound(phase) > 0) {
            gemm(phase);
        }
        if (phase == SELECT && gid < tokens) {
            selectExperts(gid);
        }
        if (phase == POSITION && gid < tokens * topK) {
            priorityPosition(gid);
        }
        if (phase == RENUMBER && gid < tokens * topK) {
            renumberGateValue(gid);
        }
        if (phase == COUNT && gid < groups * experts) {
            countAssignments(gid);
        }
        if (phase == OFFSETS && gid == 0) {
            rowOffsets();
        }
        if (phase == DISPATCH && gid < tokens) {
            gatesAndDispatch(gid);
        }
        if (phase == COMBINE && gid < tokens * modelDim) {
            combine(gid);
        }
        if (phase == LOSS_GROUP && gid < groups * experts) {
            lossTerms(gid);
        }
        if (phase == LOSS_TOTAL && gid == 0) {
            lossTotal();
        }
        if (phase == BACK_GATE && gid < tokens * topK) {
            backGate(gid);
        }
        if (phase == BACK_EXPERT_INPUT && gid < tokens * modelDim) {
            backExpertInput(gid);
        }
        if (phase == GRAD_B_OUT && gid < experts * modelDim) {
            gradBOut(gid);
        }
        if (phase == GRAD_B_IN && gid < experts * hiddenDim) {
            gradBIn(gid);
        }
        if (phase == BACK_ROUTING && gid < tokens) {
            backRouting(gid);
        }
        if (phase == GRAD_ROUTER_BIAS && gid < experts) {
            gradRouterBias(gid);
        }
        if (phase == CV_BACK && gid < groups * experts) {
            cvBack(gid);
        }
    }

    /** What the router sees of token t, feature j: \( \tilde{x} = x \odot u \) with jitter, else x. */
    private float routerInput(int t, int j) {
        float v = x[t * modelDim + j];
        if (hasJitter == 1) {
            v = v * jitter[t * modelDim + j];
        }
        return v;
    }

    /**
     * Stores logit (t, e), \( z = b_e + \sum_j \tilde{x}_{t,j} W_{j,e} \) ({@link #gemmStart} gives the bias), and with
     * learned noise \( a = \sum_j x_{t,j} W_{noise,j,e} \), \( \sigma \) and the key \( H = z + \varepsilon \sigma \).
     */
    private void storeLogit(int t, int e, float s, float a) {
        int i = t * experts + e;
        logits[i] = s;
        float key = s;
        if (learnedNoise == 1) {
            rawStd[i] = a;
            // softplus without overflow, as NoisyTopKRouter#softplus
            float sg = max(a, 0f) + log1p(exp(-abs(a))) + noiseEpsilon;
            sigma[i] = sg;
            key = s + logitNoise[i] * sg;
        }
        keys[i] = key;
    }

    /** Softmax, lse, top-k (value descending, index ascending), gates before capacity, the random second-expert policy. */
    private void selectExperts(int t) {
        int row = t * experts;
        float m = logits[row];
        for (int e = 1; e < experts; e++) {
            m = max(m, logits[row + e]);
        }
        float sum = 0f;
        for (int e = 0; e < experts; e++) {
            sum += exp(logits[row + e] - m);
        }
        float l = m + log(sum);
        lse[t] = l;
        for (int e = 0; e < experts; e++) {
            probs[row + e] = exp(logits[row + e] - l);
        }
        int routed = 1;
        if (paddingNotRouted == 1 && mask[t] != 1f) {
            routed = 0;
        }
        int ranks = topK + smoothLoad;
        if (routerKind == ROUTER_EXPERT_CHOICE) {
            ranks = 0;
        }
        int stride = topK + 1;
        for (int r = 0; r < ranks; r++) {
            int best = -1;
            for (int e = 0; e < experts; e++) {
                int taken = 0;
                for (int q = 0; q < r; q++) {
                    if (topOrder[t * stride + q] == e) {
                        taken = 1;
                    }
                }
                if (taken == 0) {
                    if (best < 0) {
                        best = e;
                    } else if (keys[row + e] > keys[row + best]) {
                        best = e;
                    }
                }
            }
            topOrder[t * stride + r] = best;
        }
        for (int r = 0; r < topK; r++) {
            int chosen = -1;
            if (routed == 1) {
                chosen = r;
                if (routerKind != ROUTER_EXPERT_CHOICE) {
                    chosen = topOrder[t * stride + r];
                }
            }
            selected[t * topK + r] = chosen;
            policyDropped[t * topK + r] = 0;
        }
        if (smoothLoad == 1) {
            // NoisyTopKRouter#probInTopK: thr = (k+1)-th key if i is strictly above it, else the k-th
            float thresholdIfIn = keys[row + topOrder[t * stride + topK]];
            float thresholdIfOut = keys[row + topOrder[t * stride + topK - 1]];
            for (int e = 0; e < experts; e++) {
                float threshold = thresholdIfOut;
                if (keys[row + e] > thresholdIfIn) {
                    threshold = thresholdIfIn;
                }
                // Phi = (1 + erf(w)) / 2, from erfc so a small Phi keeps its relative accuracy
                float w = (logits[row + e] - threshold) / (1.41421356f * sigma[row + e] + 1e-20f);
                float tail = halfErfc(abs(w), expNegSquare(w, 1f));
                if (w > 0f) {
                    tail = 1f - tail;
                }
                probInTopK[row + e] = tail;
            }
        }
        if (routed == 1) {
            // expert choice: every expert is a candidate; the gate is s = p
            float mS = keys[row + selected[t * topK]];
            float sumS = 0f;
            for (int r = 0; r < topK; r++) {
                sumS += exp(keys[row + selected[t * topK + r]] - mS);
            }
            for (int r = 0; r < topK; r++) {
                int e = selected[t * topK + r];
                float g = probs[row + e];
                if (gateMode != GATES_NONE) {
                    g = exp(keys[row + e] - mS) / sumS;
                }
                gateBefore[t * topK + r] = g;
                float pg = g;
                if (gateMode == GATES_RENORMALIZE_AFTER) {
                    pg = probs[row + e];
                }
                priorityGate[t * topK + r] = pg;
            }
            if (secondExpertRandom == 1) {
                // keep rank 1 iff u_t < g_{t,S[1]} / θ
                int drop = 1;
                if (uniforms[t] < gateBefore[t * topK + 1] / secondExpertThreshold) {
                    drop = 0;
                }
                policyDropped[t * topK + 1] = drop;
            }
        } else {
            for (int r = 0; r < topK; r++) {
                gateBefore[t * topK + r] = 0f;
                priorityGate[t * topK + r] = 0f;
            }
        }
    }

    /** Whether assignment b comes before assignment a in the priority order (both to the same expert). */
    private int comesBefore(int b, int a) {
        int tb = b / topK;
        int rb = b % topK;
        int ta = a / topK;
        int ra = a % topK;
        // (token, rank) order breaks every remaining tie; b != a, and an expert appears once per token
        int byTokenRank = 0;
        if (tb < ta) {
            byTokenRank = 1;
        } else if (tb == ta && rb < ra) {
            byTokenRank = 1;
        }
        int before = 0;
        if (priority == PRIORITY_RANK_MAJOR) {
            if (rb < ra) {
                before = 1;
            } else if (rb == ra && tb < ta) {
                before = 1;
            }
        } else if (priority == PRIORITY_TOKEN_MAJOR) {
            before = byTokenRank;
        } else if (priority == PRIORITY_BATCH_PRIORITIZED) {
            float pb = probs[tb * experts + selected[tb * topK]];
            float pa = probs[ta * experts + selected[ta * topK]];
            if (rb < ra) {
                before = 1;
            } else if (rb == ra) {
                if (pb > pa) {
                    before = 1;
                } else if (pb == pa && tb < ta) {
                    before = 1;
                }
            }
        } else {
            float gb = priorityGate[b];
            float ga = priorityGate[a];
            if (gb > ga) {
                before = 1;
            } else if (gb == ga) {
                before = byTokenRank;
            }
        }
        return before;
    }

    /** The position of assignment a among its expert's assignments of its group, in priority order; its slot unless GATE_VALUE. */
    private void priorityPosition(int a) {
        int pos = -1;
        if (selected[a] >= 0 && policyDropped[a] == 0) {
            int e = selected[a];
            int first = (a / topK / groupSize) * groupSize * topK;
            int last = first + groupSize * topK;
            pos = 0;
            for (int b = first; b < last; b++) {
                if (b != a && selected[b] == e && policyDropped[b] == 0) {
                    pos += comesBefore(b, a);
                }
            }
        }
        position[a] = pos;
        if (priority != PRIORITY_GATE_VALUE) {
            int s = -1;
            if (pos >= 0 && pos < capacity) {
                s = pos;
            }
            slot[a] = s;
        }
    }

    /** GATE_VALUE: the C best gates are kept; their slots are numbered in (token, rank) order. */
    private void renumberGateValue(int a) {
        if (priority == PRIORITY_GATE_VALUE) {
            int s = -1;
            int pos = position[a];
            if (pos >= 0 && pos < capacity) {
                int e = selected[a];
                int first = (a / topK / groupSize) * groupSize * topK;
                s = 0;
                for (int b = first; b < a; b++) {
                    if (selected[b] == e && position[b] >= 0 && position[b] < capacity) {
                        s++;
                    }
                }
            }
            slot[a] = s;
        }
    }

    /** Per (group, expert): assignments chosen (before capacity, including policy drops) and kept. */
    private void countAssignments(int i) {
        int g = i / experts;
        int e = i % experts;
        int load = 0;
        int kept = 0;
        for (int a = g * groupSize * topK; a < (g + 1) * groupSize * topK; a++) {
            if (selected[a] == e) {
                if (routerKind != ROUTER_EXPERT_CHOICE) {
                    load++;
                }
                if (slot[a] >= 0) {
                    kept++;
                    if (routerKind == ROUTER_EXPERT_CHOICE) {
                        load++;
                    }
                }
            }
        }
        loadPerGroup[i] = load;
        keptPerGroup[i] = kept;
    }

    /** Dispatch rows: expert-major, then group, then slot (the reference's (group, slot) order per expert). */
    private void rowOffsets() {
        int running = 0;
        for (int e = 0; e < experts; e++) {
            expertRowStart[e] = running;
            for (int g = 0; g < groups; g++) {
                rowBase[e * groups + g] = running;
                running += keptPerGroup[g * experts + e];
            }
            expertRows[e] = running - expertRowStart[e];
        }
    }

    /** Combine weights once dropping is known, and each kept assignment's dispatch row. */
    private void gatesAndDispatch(int t) {
        int row = t * experts;
        int grp = t / groupSize;
        if (gateMode == GATES_RENORMALIZE_AFTER) {
            float m = 0f;
            int any = 0;
            for (int r = 0; r < topK; r++) {
                if (slot[t * topK + r] >= 0) {
                    float z = logits[row + selected[t * topK + r]];
                    if (any == 0) {
                        m = z;
                    } else {
                        m = max(m, z);
                    }
                    any = 1;
                }
            }
            float sum = 0f;
            for (int r = 0; r < topK; r++) {
                if (slot[t * topK + r] >= 0) {
                    sum += exp(logits[row + selected[t * topK + r]] - m);
                }
            }
            for (int r = 0; r < topK; r++) {
                float g = 0f;
                if (slot[t * topK + r] >= 0) {
                    g = exp(logits[row + selected[t * topK + r]] - m) / sum;
                }
                gate[t * topK + r] = g;
            }
        } else {
            for (int r = 0; r < topK; r++) {
                float g = 0f;
                if (slot[t * topK + r] >= 0) {
                    g = gateBefore[t * topK + r];
                }
                gate[t * topK + r] = g;
            }
        }
        for (int r = 0; r < topK; r++) {
            int a = t * topK + r;
            int dispatchRow = -1;
            if (slot[a] >= 0) {
                dispatchRow = rowBase[selected[a] * groups + grp] + slot[a];
                tokenOfRow[dispatchRow] = t;
                assignmentOfRow[dispatchRow] = a;
            }
            rowOf[a] = dispatchRow;
            if (routerKind == ROUTER_EXPERT_CHOICE) {
                if (slot[a] < 0) {
                    selected[a] = -1;
                }
            }
        }
    }

    /** What the experts receive for token t, feature j: x, or the jittered \( \tilde{x} \) when jitter feeds the experts. */
    private float expertInput(int t, int j) {
        float v = x[t * modelDim + j];
        if (jitterFeedsExperts == 1) {
            if (hasJitter == 1) {
                v = v * jitter[t * modelDim + j];
            }
        }
        return v;
    }

    /** Base nonlinearity \( \phi(a) \). */
    private float activate(float a) {
        float v = 0f;
        if (activation == ACT_RELU) {
            if (a > 0f) {
                v = a;
            }
        } else if (activation == ACT_GELU) {
            v = a * normalCdf(a);
        } else if (activation == ACT_GELU_TANH) {
            // a (1 + tanh u) / 2 = a / (1 + e^{-2u}): no cancellation in 1 + tanh u for u < 0
            v = a / (1f + exp(-2f * 0.7978845608f * (a + 0.044715f * a * a * a)));
        } else {
            v = a / (1f + exp(-a));
        }
        return v;
    }

    /**
     * \( \Phi(a) \), the standard normal CDF, in float with a small relative error on both tails:
     * the smaller of \( \Phi(a) \) and \( 1 - \Phi(a) \) is \( \operatorname{erfc}(|a|/\sqrt2)/2 \)
     * ({@link #halfErfc}), never \( (1 + \operatorname{erf})/2 \), which cancels for a &lt; 0.
     */
    private float normalCdf(float a) {
        float tail = halfErfc(abs(a) * 0.70710678f, expNegSquare(a, 0.5f));
        if (a > 0f) {
            tail = 1f - tail;
        }
        return tail;
    }

    /**
     * \( \operatorname{erfc}(z)/2 \) for z &#8805; 0 given \( e^{-z^2} \) (Kernel has no erf mapping):
     * Numerical Recipes' erfcc (Chebyshev fit, fractional error below 1.2e-7 everywhere),
     * \( \operatorname{erfc}(z) \approx t\, e^{-z^2} e^{-1.26551223 + t(1.00002368 + \dots)} \),
     * \( t = 1/(1 + z/2) \). The caller supplies \( e^{-z^2} \) from {@link #expNegSquare}, exact in
     * its argument, because rounding \( z^2 \) to float would cost a relative \( z^2 u \).
     */
    private float halfErfc(float z, float expNegZ2) {
        float t = 1f / (1f + 0.5f * z);
        float p = -1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f + t * (-0.18628806f
                + t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f + t * (-0.82215223f + t * 0.17087277f))))))));
        return 0.5f * t * expNegZ2 * exp(p);
    }

    /**
     * \( e^{-c x^2} \) for c = 1 or 1/2 with a relative error of a few u: x = x_h + x_l with x_h a
     * multiple of 1/64 (so \( c x_h^2 \) is exact in float for |x| &lt; 20) and
     * \( e^{-c x^2} = e^{-c x_h^2} e^{-c x_l (x + x_h)} \); 0 once it underflows.
     */
    private float expNegSquare(float x, float c) {
        float v = 0f;
        if (c * x * x < 110f) {
            float hi = ((int) (x * 64f)) / 64f;
            v = exp(-c * hi * hi) * exp(-c * (x - hi) * (x + hi));
        }
        return v;
    }

    /** Stores one hidden unit of one dispatch row. */
    private void storeHidden(int e, int dispatchRow, int col, float accIn, float accGate) {
        float a = accIn;
        if (hasExpertBias == 1) {
            a += bIn[e * hiddenDim + col];
        }
        int o = dispatchRow * hiddenDim + col;
        preActivation[o] = a;
        float hv = activate(a);
        if (gated == 1) {
            gateLinear[o] = accGate;
            hv = hv * accGate;
        }
        hidden[o] = hv;
    }

    /** Stores one output feature of one dispatch row. */
    private void storeOutput(int e, int dispatchRow, int col, float acc) {
        float v = acc;
        if (hasExpertBias == 1) {
            v += bOut[e * modelDim + col];
        }
        expertOut[dispatchRow * modelDim + col] = v;
    }

    // ---------------------------------------------------------------------------------------------
    // The GEMM phases. Each is a product out(r, c) = Σ_k A(r, k) B(k, c) per block (an expert, or one
    // block for the router), plus, for some, a second product C·D over the same k: into its own sum
    // (W_gate beside W_in, W_noise beside W_r) or term by term into the first (the gated input
    // gradient, as the reference sums it). The shape functions, the operand fetches and the stores say
    // what A, B, C, D and the output are per phase; gemm runs them, tiled or naive. Both sum over k
    // in increasing order, starting from gemmStart: padding adds +0.

    /** 1 for the phases that are GEMMs. */
    int isGemm(int phase) {
        int g = 0;
        if (expertRowsPhase(phase) == 1 || phase == GRAD_W_OUT || phase == GRAD_W_IN || phase == ROUTER || phase == BACK_INPUT
                || phase == GRAD_ROUTER || phase == GRAD_NOISE) {
            g = 1;
        }
        return g;
    }

    /** 1 for the GEMMs whose output rows are an expert's dispatch rows. */
    private int expertRowsPhase(int phase) {
        int g = 0;
        if (phase == EXPERT_IN || phase == EXPERT_OUT || phase == BACK_HIDDEN || phase == BACK_EXPERT_ROWS) {
            g = 1;
        }
        return g;
    }

    /** Blocks: one per expert for the expert GEMMs, one for the router's. */
    private int gemmBlocks(int phase) {
        int n = 1;
        if (expertRowsPhase(phase) == 1 || phase == GRAD_W_OUT || phase == GRAD_W_IN) {
            n = experts;
        }
        return n;
    }

    /** Output rows of block b. */
    private int gemmRows(int phase, int b) {
        int n = tokens;
        if (expertRowsPhase(phase) == 1) {
            n = expertRows[b];
        }
        if (phase == GRAD_W_OUT) {
            n = hiddenDim;
        }
        if (phase == GRAD_W_IN || phase == GRAD_ROUTER || phase == GRAD_NOISE) {
            n = modelDim;
        }
        return n;
    }

    /** The most output rows any block has: what the work-items are laid out for. */
    private int gemmRowBound(int phase) {
        int n = maxRowsPerExpert;
        if (expertRowsPhase(phase) == 0) {
            n = gemmRows(phase, 0);
        }
        return n;
    }

    /** Length of the sum of block b: for a weight gradient, the rows dispatched to the expert. */
    private int gemmInner(int phase, int b) {
        int n = modelDim;
        if (phase == EXPERT_OUT || phase == BACK_EXPERT_ROWS) {
            n = hiddenDim;
        }
        if (phase == GRAD_W_OUT || phase == GRAD_W_IN) {
            n = expertRows[b];
        }
        if (phase == BACK_INPUT) {
            n = experts;
        }
        if (phase == GRAD_ROUTER || phase == GRAD_NOISE) {
            n = tokens;
        }
        return n;
    }

    /** Output columns. */
    private int gemmCols(int phase) {
        int n = hiddenDim;
        if (phase == EXPERT_OUT || phase == BACK_EXPERT_ROWS || phase == GRAD_W_OUT || phase == BACK_INPUT) {
            n = modelDim;
        }
        if (phase == ROUTER || phase == GRAD_ROUTER || phase == GRAD_NOISE) {
            n = experts;
        }
        return n;
    }

    /** 0: no second product; 1: C·D into its own sum; 2: C·D into the first sum, term by term. */
    private int gemmSecond(int phase) {
        int m = 0;
        if (gated == 1 && (phase == EXPERT_IN || phase == GRAD_W_IN)) {
            m = 1;
        }
        if (learnedNoise == 1 && (phase == ROUTER || phase == BACK_INPUT)) {
            m = 1;
        }
        if (gated == 1 && phase == BACK_EXPERT_ROWS) {
            m = 2;
        }
        return m;
    }

    /** Where the sum of output column c starts: the router bias for the logits, else 0. */
    private float gemmStart(int phase, int c) {
        float s = 0f;
        if (phase == ROUTER && hasRouterBias == 1) {
            s = bRouter[c];
        }
        return s;
    }

    /** \( g\, dY_{t,c} \) of a dispatch row's assignment (gate g, token t). */
    private float scaledOutputGradient(int dispatchRow, int c) {
        int a = assignmentOfRow[dispatchRow];
        return gate[a] * dY[(a / topK) * modelDim + c];
    }

    /** The first dispatch row of block b: expert b's, or 0 for the router's one block. */
    private int blockFirstRow(int phase, int b) {
        int first = 0;
        if (gemmBlocks(phase) > 1) {
            first = expertRowStart[b];
        }
        return first;
    }

    /** A(r, k) of block b. */
    private float operandA(int phase, int b, int r, int k) {
        int first = blockFirstRow(phase, b);
        float v = 0f;
        if (phase == EXPERT_IN) {
            v = expertInput(tokenOfRow[first + r], k);
        }
        if (phase == EXPERT_OUT) {
            v = hidden[(first + r) * hiddenDim + k];
        }
        if (phase == BACK_HIDDEN) {
            v = scaledOutputGradient(first + r, k);
        }
        if (phase == BACK_EXPERT_ROWS) {
            v = dPreActivation[(first + r) * hiddenDim + k];
        }
        if (phase == GRAD_W_OUT) {
            v = hidden[(first + k) * hiddenDim + r];
        }
        if (phase == GRAD_W_IN) {
            v = expertInput(tokenOfRow[first + k], r);
        }
        if (phase == ROUTER) {
            v = routerInput(r, k);
        }
        if (phase == BACK_INPUT) {
            v = dLogits[r * experts + k];
        }
        if (phase == GRAD_ROUTER) {
            v = routerInput(k, r);
        }
        if (phase == GRAD_NOISE) {
            v = x[k * modelDim + r];
        }
        return v;
    }

    /** B(k, c) of block b. */
    private float operandB(int phase, int b, int k, int c) {
        int first = blockFirstRow(phase, b);
        float v = 0f;
        if (phase == EXPERT_IN) {
            v = wIn[(b * modelDim + k) * hiddenDim + c];
        }
        if (phase == EXPERT_OUT) {
            v = wOut[(b * hiddenDim + k) * modelDim + c];
        }
        if (phase == BACK_HIDDEN) {
            v = wOut[(b * hiddenDim + c) * modelDim + k];
        }
        if (phase == BACK_EXPERT_ROWS) {
            v = wIn[(b * modelDim + c) * hiddenDim + k];
        }
        if (phase == GRAD_W_OUT) {
            v = scaledOutputGradient(first + k, c);
        }
        if (phase == GRAD_W_IN) {
            v = dPreActivation[(first + k) * hiddenDim + c];
        }
        if (phase == ROUTER) {
            v = wRouter[k * experts + c];
        }
        if (phase == BACK_INPUT) {
            v = wRouter[c * experts + k];
        }
        if (phase == GRAD_ROUTER) {
            v = dLogits[k * experts + c];
        }
        if (phase == GRAD_NOISE) {
            v = dRawStd[k * experts + c];
        }
        return v;
    }

    /** C(r, k) of the second product; {@code a} = A(r, k), which the W_in/W_gate pairs share. */
    private float operandC(int phase, int b, int r, int k, float a) {
        float v = a;
        if (phase == BACK_EXPERT_ROWS) {
            v = dGateLinear[(expertRowStart[b] + r) * hiddenDim + k];
        }
        if (phase == ROUTER) {
            v = x[r * modelDim + k];
        }
        if (phase == BACK_INPUT) {
            v = dRawStd[r * experts + k];
        }
        return v;
    }

    /** D(k, c) of the second product. */
    private float operandD(int phase, int b, int k, int c) {
        float v = 0f;
        if (phase == EXPERT_IN) {
            v = wGate[(b * modelDim + k) * hiddenDim + c];
        }
        if (phase == BACK_EXPERT_ROWS) {
            v = wGate[(b * modelDim + c) * hiddenDim + k];
        }
        if (phase == GRAD_W_IN) {
            v = dGateLinear[(expertRowStart[b] + k) * hiddenDim + c];
        }
        if (phase == ROUTER) {
            v = wNoise[k * experts + c];
        }
        if (phase == BACK_INPUT) {
            v = wNoise[c * experts + k];
        }
        return v;
    }

    /** Stores out(r, c) of block b: {@code s} the first sum, {@code s2} the second product's. */
    private void gemmStore(int phase, int b, int r, int c, float s, float s2) {
        int first = blockFirstRow(phase, b);
        if (phase == EXPERT_IN) {
            storeHidden(b, first + r, c, s, s2);
        }
        if (phase == EXPERT_OUT) {
            storeOutput(b, first + r, c, s);
        }
        if (phase == BACK_HIDDEN) {
            storeHiddenGradient(first + r, c, s);
        }
        if (phase == BACK_EXPERT_ROWS) {
            dRowInput[(first + r) * modelDim + c] = s;
        }
        if (phase == GRAD_W_OUT) {
            gWOut[(b * hiddenDim + r) * modelDim + c] = s;
        }
        if (phase == GRAD_W_IN) {
            gWIn[(b * modelDim + r) * hiddenDim + c] = s;
            if (gated == 1) {
                gWGate[(b * modelDim + r) * hiddenDim + c] = s2;
            }
        }
        if (phase == ROUTER) {
            storeLogit(r, c, s, s2);
        }
        if (phase == BACK_INPUT) {
            storeInputGradient(r * modelDim + c, s, s2);
        }
        if (phase == GRAD_ROUTER) {
            gWRouter[r * experts + c] = s;
        }
        if (phase == GRAD_NOISE) {
            gWNoise[r * experts + c] = s;
        }
    }

    /**
     * A GEMM phase: work-group (block, row tile, column tile) computes a {@value #TILE}×{@value #TILE} block of the
     * output, work-item (ly, lx) its element (r, c). Tiled ({@link #gemmTiled} 1), each step of {@value #TILE}
     * along k stages A(r, k0 + lx), B(k0 + ly, c) (and C, D) in local memory, zero outside the matrices (a weight
     * gradient's rows past the expert's last are such zeros), and every work-item sums its row of A's tile against
     * its column of B's. Naive (0, the debugging baseline), each work-item reads A(r, k) and B(k, c) itself, one k
     * at a time, and ignores the tiles. One loop for both keeps one call of each operand fetch, and its barriers
     * are unconditional in the loop body: with a second engine, or with the barriers under {@code if (gemmTiled ==
     * 1)}, PoCL ran every phase of the kernel, GEMM or not, 2 to 3 times slower (measured: a 1-work-item phase over
     * the S launch's 4M work-items took 850 ms of CPU instead of 370). The whole work-group takes the same
     * branches, so every barrier is reached by all its work-items.
     */
    private void gemm(int phase) {
        int cols = gemmCols(phase);
        int colTiles = (cols + TILE - 1) / TILE;
        int tiles = (gemmRowBound(phase) + TILE - 1) / TILE * colTiles;
        int group = getGroupId();
        int b = group / tiles;
        int rowTile = group % tiles / colTiles;
        int colTile = group % colTiles;
        int lid = getLocalId();
        int ly = lid / TILE;
        int lx = lid % TILE;
        if (b < gemmBlocks(phase) && rowTile * TILE < gemmRows(phase, b)) {
            int rows = gemmRows(phase, b);
            int inner = gemmInner(phase, b);
            int second = gemmSecond(phase);
            int r = rowTile * TILE + ly;
            int c = colTile * TILE + lx;
            // per step: k0 + ka is the k this work-item fetches of A (and C), k0 + kb of B (and D)
            int step = 1;
            int ka = 0;
            int kb = 0;
            if (gemmTiled == 1) {
                step = TILE;
                ka = lx;
                kb = ly;
            }
            float s = gemmStart(phase, c);
            float s2 = 0f;
            for (int k0 = 0; k0 < inner; k0 += step) {
                float av = 0f;
                float cv = 0f;
                if (r < rows && k0 + ka < inner) {
                    av = operandA(phase, b, r, k0 + ka);
                    if (second != 0) {
                        cv = operandC(phase, b, r, k0 + ka, av);
                    }
                }
                float bv = 0f;
                float dv = 0f;
                if (k0 + kb < inner && c < cols) {
                    bv = operandB(phase, b, k0 + kb, c);
                    if (second != 0) {
                        dv = operandD(phase, b, k0 + kb, c);
                    }
                }
                tileA[lid] = av;
                tileB[lid] = bv;
                tileC[lid] = cv;
                tileD[lid] = dv;
                localBarrier();
                if (gemmTiled == 0) {
                    s += av * bv;
                    if (second == 1) {
                        s2 += cv * dv;
                    }
                    if (second == 2) {
                        s += cv * dv;
                    }
                }
                if (gemmTiled == 1) {
                    for (int kk = 0; kk < TILE; kk++) {
                        s += tileA[ly * TILE + kk] * tileB[kk * TILE + lx];
                        if (second == 1) {
                            s2 += tileC[ly * TILE + kk] * tileD[kk * TILE + lx];
                        }
                        if (second == 2) {
                            s += tileC[ly * TILE + kk] * tileD[kk * TILE + lx];
                        }
                    }
                }
                localBarrier();
            }
            if (r < rows && c < cols) {
                gemmStore(phase, b, r, c, s, s2);
            }
        }
    }

    /** Work-items the GEMM phase needs (host side, for the launch size): a whole work-group per output tile. */
    long gemmWorkItems(int phase) {
        return gemmBlocks(phase) * (long) ((gemmRowBound(phase) + TILE - 1) / TILE) * ((gemmCols(phase) + TILE - 1) / TILE)
                * LOCAL_SIZE;
    }

    /** \( y_{t,c} = \sum_r g_{t,r} f_{S_t[r]}(x_t)_c \) over kept ranks, rank 0 first; nothing kept gives exactly 0. */
    private void combine(int i) {
        int t = i / modelDim;
        int c = i % modelDim;
        float acc = 0f;
        for (int r = 0; r < topK; r++) {
            int dispatchRow = rowOf[t * topK + r];
            if (dispatchRow >= 0) {
                acc += gate[t * topK + r] * expertOut[dispatchRow * modelDim + c];
            }
        }
        y[i] = acc;
    }

    /** Per (group, expert): \( f_e P_e \) over the group's real tokens; expert 0 also the group's mean lse². */
    private void lossTerms(int i) {
        int g = i / experts;
        int e = i % experts;
        int real = 0;
        float sumP = 0f;
        int count = 0;
        float sumLse2 = 0f;
        for (int t = g * groupSize; t < (g + 1) * groupSize; t++) {
            if (mask[t] == 1f) {
                real++;
                sumP += probs[t * experts + e];
                float l = lse[t];
                sumLse2 += l * l;
                int ranks = topK;
                if (auxNormalization == AUX_TOP1) {
                    ranks = 1;
                }
                for (int r = 0; r < ranks; r++) {
                    if (selected[t * topK + r] == e) {
                        count++;
                    }
                }
            }
        }
        float term = 0f;
        float z = 0f;
        float fraction = 0f;
        if (real > 0) {
            int denominator = real;
            if (auxNormalization == AUX_TOPK_NORMALIZED) {
                denominator = topK * real;
            }
            fraction = (float) count / (float) denominator;
            term = fraction * (sumP / (float) real);
            z = sumLse2 / (float) real;
        }
        auxTerms[i] = term;
        auxFraction[i] = fraction;
        if (routerKind == ROUTER_NOISY_TOP_K) {
            // ImportanceLoss#importance, LoadLoss#smoothLoad or #countLoad, over the group's real tokens
            float imp = 0f;
            float load = 0f;
            for (int t = g * groupSize; t < (g + 1) * groupSize; t++) {
                if (mask[t] == 1f) {
                    for (int r = 0; r < topK; r++) {
                        if (selected[t * topK + r] == e) {
                            imp += gateBefore[t * topK + r];
                            if (smoothLoad == 0) {
                                load += 1f;
                            }
                        }
                    }
                    if (smoothLoad == 1) {
                        load += probInTopK[t * experts + e];
                    }
                }
            }
            importance[i] = imp;
            loadVector[i] = load;
        }
        if (e == 0) {
            zPerGroup[g] = z;
            realPerGroup[g] = real;
        }
    }

    /** aux = mean over groups of \( E \sum_e f_e P_e \); z = mean over groups of the mean lse². */
    private void lossTotal() {
        float aux = 0f;
        float z = 0f;
        for (int g = 0; g < groups; g++) {
            float s = 0f;
            for (int e = 0; e < experts; e++) {
                s += auxTerms[g * experts + e];
            }
            aux += (float) experts * s;
            z += zPerGroup[g];
        }
        lossOut[0] = aux / (float) groups;
        lossOut[1] = z / (float) groups;
        float imp = 0f;
        float load = 0f;
        if (routerKind == ROUTER_NOISY_TOP_K) {
            for (int g = 0; g < groups; g++) {
                imp += cvSquared(importance, g * experts);
                load += cvSquared(loadVector, g * experts);
            }
        }
        lossOut[2] = imp / (float) groups;
        lossOut[3] = load / (float) groups;
    }

    /** {@code CoefficientOfVariation#squared} of the E values at {@code offset}: population variance over (mean² + 1e-10). */
    private float cvSquared(float[] v, int offset) {
        float n = (float) experts + 1e-10f;
        float sum = 0f;
        for (int e = 0; e < experts; e++) {
            sum += v[offset + e];
        }
        float mean = sum / n;
        float var = 0f;
        for (int e = 0; e < experts; e++) {
            float dv = v[offset + e] - mean;
            var += dv * dv;
        }
        var = var / n;
        return var / (mean * mean + 1e-10f);
    }

    /** {@code CoefficientOfVariation#squaredBackward}, element {@code e} of the E values at {@code offset}, times {@code dCv}. */
    private float cvSquaredBackward(float[] v, int offset, int e, float dCv) {
        float n = (float) experts + 1e-10f;
        float sum = 0f;
        for (int j = 0; j < experts; j++) {
            sum += v[offset + j];
        }
        float mean = sum / n;
        float var = 0f;
        float deviations = 0f;
        for (int j = 0; j < experts; j++) {
            float dv = v[offset + j] - mean;
            var += dv * dv;
            deviations += dv;
        }
        var = var / n;
        float denominator = mean * mean + 1e-10f;
        float dVar = 2f / n * ((v[offset + e] - mean) - deviations / n);
        return dCv * (dVar / denominator - var * 2f * mean * (1f / n) / (denominator * denominator));
    }

    /** Per (group, expert): \( \partial L / \partial \mathrm{Importance} \) and (smooth load) \( \partial L / \partial \mathrm{Load} \). */
    private void cvBack(int i) {
        int g = i / experts;
        int e = i % experts;
        dImportance[i] = cvSquaredBackward(importance, g * experts, e, importanceCoefficient);
        float dl = 0f;
        if (smoothLoad == 1) {
            dl = cvSquaredBackward(loadVector, g * experts, e, loadCoefficient);
        }
        dLoad[i] = dl;
    }

    /**
     * {@code ReferenceLayer#routingBackward}, noisy top-k part for token t: the importance loss and the combine reach
     * the gates (softmax over the selected H), the load loss reaches z, H (thresholds) and σ through
     * {@code NoisyTopKRouter#probInTopKBackward}; then \( H = z + \varepsilon\sigma \) and σ = softplus(·) + ε0.
     */
    private void backNoisy(int t) {
        int row = t * experts;
        int grp = t / groupSize;
        int stride = topK + 1;
        int realToken = 0;
        if (mask[t] == 1f) {
            realToken = 1;
        }
        for (int e = 0; e < experts; e++) {
            dKeys[row + e] = 0f;
            dSigma[row + e] = 0f;
        }
        if (selected[t * topK] >= 0) {
            // g_r (dG_r - sum_s g_s dG_s) = g_r sum_{s != r} g_s (dG_r - dG_s): no cancellation (see backRouting)
            for (int r = 0; r < topK; r++) {
                float dr = noisyGateGradient(t, r, grp, realToken);
                float acc = 0f;
                for (int q = 0; q < topK; q++) {
                    if (q != r) {
                        acc += gateBefore[t * topK + q] * (dr - noisyGateGradient(t, q, grp, realToken));
                    }
                }
                dKeys[row + selected[t * topK + r]] += gateBefore[t * topK + r] * acc;
            }
        }
        if (smoothLoad == 1) {
            int inExpert = topOrder[t * stride + topK];
            int outExpert = topOrder[t * stride + topK - 1];
            for (int e = 0; e < experts; e++) {
                int thresholdExpert = outExpert;
                if (keys[row + e] > keys[row + inExpert]) {
                    thresholdExpert = inExpert;
                }
                float dP = 0f;
                if (realToken == 1) {
                    dP = dLoad[grp * experts + e];
                }
                float v = logits[row + e] - keys[row + thresholdExpert];
                float sd = 1.41421356f * sigma[row + e] + 1e-20f;
                float w = v / sd;
                float density = expNegSquare(w, 1f) / 1.77245385f;
                float dV = dP * density / sd;
                dLogits[row + e] += dV;
                dKeys[row + thresholdExpert] -= dV;
                dSigma[row + e] += dP * (-density * v * 1.41421356f / (sd * sd));
            }
        }
        for (int e = 0; e < experts; e++) {
            dLogits[row + e] += dKeys[row + e];
            if (learnedNoise == 1) {
                float ds = dSigma[row + e] + logitNoise[row + e] * dKeys[row + e];
                float a = rawStd[row + e];
                float sigmoid = exp(a) / (1f + exp(a));
                if (a >= 0f) {
                    sigmoid = 1f / (1f + exp(-a));
                }
                dRawStd[row + e] = ds * sigmoid;
            }
        }
    }

    /** \( \partial L / \partial G \) of rank r before capacity: the combine's (if kept) plus the importance loss's (real tokens). */
    private float noisyGateGradient(int t, int r, int grp, int realToken) {
        float d = 0f;
        if (slot[t * topK + r] >= 0) {
            d = dGate[t * topK + r];
        }
        if (realToken == 1) {
            d += dImportance[grp * experts + selected[t * topK + r]];
        }
        return d;
    }

    // ---------------------------------------------------------------------------------------------
    // Backward. Every work-item owns one output element and loops over what touches it (no atomics,
    // so repeats are bit-identical); sums go in increasing index order like the reference's.

    /** \( \phi'(a) \), mirroring {@code ExpertNetwork#derivative}; ReLU's is 0 at 0. */
    private float activationDerivative(float a) {
        float v = 0f;
        if (activation == ACT_RELU) {
            if (a > 0f) {
                v = 1f;
            }
        }
        if (activation == ACT_GELU) {
            float pdf = expNegSquare(a, 0.5f) * 0.39894228f;
            v = normalCdf(a) + a * pdf;
        }
        if (activation == ACT_GELU_TANH) {
            // with s = (1 + tanh u) / 2 = 1 / (1 + e^{-2u}): 1 - tanh^2 u = 4 s (1 - s), 1 - s = 1 / (1 + e^{2u}),
            // so neither factor cancels when tanh u is near -1 or +1
            float u = 0.7978845608f * (a + 0.044715f * a * a * a);
            float s = 1f / (1f + exp(-2f * u));
            float sc = 1f / (1f + exp(2f * u));
            float du = 0.7978845608f * (1f + 3f * 0.044715f * a * a);
            v = s + 2f * a * s * sc * du;
        }
        if (activation == ACT_SILU) {
            float s = 1f / (1f + exp(-a));
            v = s * (1f + a * (1f - s));
        }
        return v;
    }

    /** The number of dispatch rows (kept assignments). */
    private int totalRows() {
        return expertRowStart[experts - 1] + expertRows[experts - 1];
    }

    /** {@code ReferenceLayer#expertsBackward}, combine: \( \partial L / \partial g_{t,r} = \sum_c dY_{t,c} f(x_t)_c \), 0 if dropped. */
    private void backGate(int a) {
        int t = a / topK;
        int dispatchRow = rowOf[a];
        float s = 0f;
        if (dispatchRow >= 0) {
            for (int c = 0; c < modelDim; c++) {
                s += dY[t * modelDim + c] * expertOut[dispatchRow * modelDim + c];
            }
        }
        dGate[a] = s;
    }

    /**
     * {@code ExpertNetwork#backward} for hidden unit {@code col} of a dispatch row, given
     * \( s = \partial L / \partial \mathit{hidden} = \sum_c g\, dY_c W_{out,col,c} \) ({@link #BACK_HIDDEN}): stores
     * \( \partial L / \partial a = s\, \phi'(a) \odot b \) and \( \partial L / \partial b = s\, \phi(a) \).
     */
    private void storeHiddenGradient(int dispatchRow, int col, float s) {
        int o = dispatchRow * hiddenDim + col;
        float pre = preActivation[o];
        float da = s * activationDerivative(pre);
        if (gated == 1) {
            da = da * gateLinear[o];
            dGateLinear[o] = s * activate(pre);
        }
        dPreActivation[o] = da;
    }

    /**
     * What token t's expert rows send back to its input, feature j: the sum over its kept ranks, rank order, of the
     * row's \( W_{in} \partial L / \partial a + W_{gate} \partial L / \partial b \) ({@link #BACK_EXPERT_ROWS}).
     */
    private void backExpertInput(int i) {
        int t = i / modelDim;
        int j = i % modelDim;
        float acc = 0f;
        for (int r = 0; r < topK; r++) {
            int dispatchRow = rowOf[t * topK + r];
            if (dispatchRow >= 0) {
                acc += dRowInput[dispatchRow * modelDim + j];
            }
        }
        dExpertInput[i] = acc;
    }

    /** \( \partial L / \partial b_{out}[e, c] = \sum_{\text{rows of } e} g\, dY_c \). */
    private void gradBOut(int i) {
        int e = i / modelDim;
        int c = i % modelDim;
        float s = 0f;
        for (int r = 0; r < expertRows[e]; r++) {
            int a = assignmentOfRow[expertRowStart[e] + r];
            s += gate[a] * dY[(a / topK) * modelDim + c];
        }
        gBOut[i] = s;
    }

    /** \( \partial L / \partial b_{in}[e, i] = \sum_{\text{rows of } e} \partial L / \partial a_i \). */
    private void gradBIn(int i) {
        int e = i / hiddenDim;
        int col = i % hiddenDim;
        float s = 0f;
        for (int r = 0; r < expertRows[e]; r++) {
            s += dPreActivation[(expertRowStart[e] + r) * hiddenDim + col];
        }
        gBIn[i] = s;
    }

    /**
     * {@code ReferenceLayer#routingBackward} for token t: the z-loss ({@code RouterZLoss#backward}), the aux loss
     * ({@code LoadBalancingLoss#backward}), the gates ({@code TokenChoiceRouter#gatesAfterCapacityBackward}), then the
     * softmax ({@code Softmax#softmaxBackward}) into \( \partial L / \partial z_t \).
     */
    private void backRouting(int t) {
        int row = t * experts;
        int grp = t / groupSize;
        int real = realPerGroup[grp];
        for (int e = 0; e < experts; e++) {
            dLogits[row + e] = 0f;
            dProbs[row + e] = 0f;
        }
        if (mask[t] == 1f && real > 0) {
            float dLse = zCoefficient * 2f * lse[t] / (float) real;
            for (int e = 0; e < experts; e++) {
                dLogits[row + e] = dLse * probs[row + e];
                dProbs[row + e] = auxCoefficient * (float) experts * auxFraction[grp * experts + e] / (float) real;
            }
        }
        if (routerKind == ROUTER_NOISY_TOP_K) {
            backNoisy(t);
        }
        if (routerKind == ROUTER_EXPERT_CHOICE) {
            // routeExpertChoice: gate[t, e] = s[t, e] for a taken token
            for (int e = 0; e < experts; e++) {
                if (slot[t * topK + e] >= 0) {
                    dProbs[row + e] += dGate[t * topK + e];
                }
            }
        }
        if (routerKind == ROUTER_TOKEN_CHOICE && selected[t * topK] >= 0) {
            if (gateMode == GATES_NONE) {
                for (int r = 0; r < topK; r++) {
                    if (slot[t * topK + r] >= 0) {
                        dProbs[row + selected[t * topK + r]] += dGate[t * topK + r];
                    }
                }
            }
            if (gateMode != GATES_NONE) {
                // softmax over the selected (before capacity) or the kept (after) logits:
                // g_r (dG_r - sum_s g_s dG_s) = g_r sum_{s != r} g_s (dG_r - dG_s), the gates summing to 1
                for (int r = 0; r < topK; r++) {
                    float dr = keptGateGradient(t * topK + r);
                    float acc = 0f;
                    for (int q = 0; q < topK; q++) {
                        if (q != r) {
                            acc += renormalizedGate(t * topK + q) * (dr - keptGateGradient(t * topK + q));
                        }
                    }
                    dLogits[row + selected[t * topK + r]] += renormalizedGate(t * topK + r) * acc;
                }
            }
        }
        // Softmax#softmaxBackward, p_e (dP_e - sum_j p_j dP_j), evaluated as p_e sum_{j != e} p_j (dP_e - dP_j)
        // (equal since the p sum to 1): the subtraction form cancels to an absolute error of u max|dP|
        // when p_e is near 1, which is everything a gradient of size p_j (dP_e - dP_j) has
        for (int e = 0; e < experts; e++) {
            float acc = 0f;
            for (int j = 0; j < experts; j++) {
                if (j != e) {
                    acc += probs[row + j] * (dProbs[row + e] - dProbs[row + j]);
                }
            }
            dLogits[row + e] += probs[row + e] * acc;
        }
    }

    /** \( \partial L / \partial g \) of an assignment if kept, else 0. */
    private float keptGateGradient(int a) {
        float dg = 0f;
        if (slot[a] >= 0) {
            dg = dGate[a];
        }
        return dg;
    }

    /** The renormalised gate of an assignment ({@link #combineOrBefore}), 0 for a dropped one when renormalising after capacity. */
    private float renormalizedGate(int a) {
        float g = combineOrBefore(a);
        if (gateMode == GATES_RENORMALIZE_AFTER) {
            if (slot[a] < 0) {
                g = 0f;
            }
        }
        return g;
    }

    /** The gate the renormalising softmax produced: the combine weight after capacity, or the gate before capacity. */
    private float combineOrBefore(int a) {
        float g = gateBefore[a];
        if (gateMode == GATES_RENORMALIZE_AFTER) {
            g = gate[a];
        }
        return g;
    }

    /**
     * {@code ReferenceLayer#routerBackward}, element i of \( \partial L / \partial x \): u times the router's part
     * \( s = (\partial L / \partial z) W_r^\top \) (plus \( sn = (\partial L / \partial (x W_{noise})) W_{noise}^\top \) with
     * learned noise), plus the experts' part (times u when jitter feeds the experts).
     */
    private void storeInputGradient(int i, float s, float sn) {
        float v = s;
        if (learnedNoise == 1) {
            v += sn;
        }
        float fromExperts = dExpertInput[i];
        if (hasJitter == 1) {
            v = jitter[i] * v;
            if (jitterFeedsExperts == 1) {
                fromExperts = jitter[i] * fromExperts;
            }
        }
        dX[i] = v + fromExperts;
    }

    /** \( \partial L / \partial b_r[e] = \sum_t \partial L / \partial z_{t,e} \). */
    private void gradRouterBias(int e) {
        float s = 0f;
        for (int t = 0; t < tokens; t++) {
            s += dLogits[t * experts + e];
        }
        gBRouter[e] = s;
    }
}

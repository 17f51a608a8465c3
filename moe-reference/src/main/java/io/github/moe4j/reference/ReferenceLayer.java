package io.github.moe4j.reference;

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
import io.github.moe4j.api.RouterNoise;
import io.github.moe4j.api.Routing;
import io.github.moe4j.api.SecondExpertPolicy;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The reference MoE layer: composes the router, capacity, experts and losses of this package, in
 * double precision, in a fixed order. It is also the stage API a test or a reader can run one step
 * at a time:
 * <ol>
 * <li>{@link #router}: \( \tilde{x} \), logits z, probabilities p, noisy logits H;</li>
 * <li>{@link #route}: selection, capacity slots and gates (or {@link #adoptRouting} to take the
 *     selection from elsewhere and recompute the gates);</li>
 * <li>{@link #dispatch}: each expert's rows, in (group, slot) order;</li>
 * <li>{@link #experts}: \( f_e \) of every row;</li>
 * <li>{@link #combine}: \( y_t = \sum_{\text{kept}\ j} g_{t,j} f_{S_t[j]}(x_t) \), rank 0 first;</li>
 * <li>{@link #losses}: the auxiliary losses per group, averaged over groups.</li>
 * </ol>
 * {@link #forward(double[], int, ForwardOptions)} runs them all; {@link #forwardWithRouting} runs
 * them on a routing decided elsewhere, which is how the conformance suite judges a backend whose
 * float32 logits broke a near-tie differently.
 *
 * <p>Not thread-safe (by the {@link MoeLayer} contract), though it keeps no scratch state.
 */
public final class ReferenceLayer implements MoeLayer {
    // T = tokens, d = model dim, h = hidden dim, E = experts, k = experts per token, m = choices per token

    private final MoeConfig config;
    private final ReferenceWeights weights;
    private final ReferenceBackward backwardPass;

    /** A layer over float32 weights (validated against the configuration). */
    public ReferenceLayer(MoeConfig config, MoeWeights weights) {
        this(config, ReferenceWeights.of(Checks.requireNonNull(config, "config"), Checks.requireNonNull(weights, "weights")));
    }

    /** A layer over double weights, for gradient checks and golden cases. */
    public ReferenceLayer(MoeConfig config, ReferenceWeights weights) {
        this.config = Checks.requireNonNull(config, "config");
        this.weights = Checks.requireNonNull(weights, "weights");
        weights.validate(config);
        this.backwardPass = new ReferenceBackward(config, weights);
    }

    @Override
    public MoeConfig config() {
        return config;
    }

    /** The weights, in double. */
    public ReferenceWeights weights() {
        return weights;
    }

    // ---------------------------------------------------------------------------------------------
    // Whole layer

    @Override
    public MoeForward forward(Tensor input, ForwardOptions options) {
        Checks.requireNonNull(input, "input");
        if (input.rank() != 2) {
            throw new IllegalArgumentException("input has shape " + java.util.Arrays.toString(input.shape())
                    + " but [tokens, modelDim] with modelDim = " + config.modelDim() + " was expected");
        }
        int tokens = input.dim(0);
        input.requireShape("input", "[tokens, modelDim]", tokens, config.modelDim());
        return forward(input.toDoubleArray(), tokens, options);
    }

    /**
     * The whole forward pass in double.
     *
     * @param x       [T, d]
     * @param tokens  T
     * @param options inference or training, groups, padding, noise
     */
    public ReferenceForward forward(double[] x, int tokens, ForwardOptions options) {
        RouterOutput r = router(x, tokens, options);
        return run(r, route(r, options), options);
    }

    /**
     * The forward pass on a routing decided elsewhere: its selection and which assignments it kept are
     * taken as given, the gates, output and losses are recomputed here in double.
     *
     * @param routing a routing of {@code tokens} tokens for this configuration
     */
    public ReferenceForward forwardWithRouting(double[] x, int tokens, Routing routing, ForwardOptions options) {
        RouterOutput r = router(x, tokens, options);
        return run(r, adoptRouting(r, routing, options), options);
    }

    /** {@link #forwardWithRouting(double[], int, Routing, ForwardOptions)} on a float32 input. */
    public ReferenceForward forwardWithRouting(Tensor input, Routing routing, ForwardOptions options) {
        input.requireShape("input", "[tokens, modelDim]", routing.tokens(), config.modelDim());
        return forwardWithRouting(input.toDoubleArray(), routing.tokens(), routing, options);
    }

    private ReferenceForward run(RouterOutput r, RoutingPlan plan, ForwardOptions options) {
        Dispatch dispatch = dispatch(r.expertInput(), plan);
        ExpertOutputs outputs = experts(dispatch);
        double[] y = combine(outputs, dispatch, plan);
        double[][] noisyStats = new double[2][];
        MoeLosses losses = losses(r, plan, options, noisyStats);
        return new ReferenceForward(config, this, r, plan, dispatch, outputs, y, noisyStats[0], noisyStats[1], losses);
    }

    /**
     * {@inheritDoc}
     *
     * <p>Runs {@link #backward(ReferenceForward, double[], Set)} and rounds the gradients to float.
     *
     * @throws IllegalArgumentException if {@code forward} did not come from this layer, or {@code dOutput} is not [T, d]
     * @throws NonFiniteException       if {@code dOutput} holds a NaN or infinity
     */
    @Override
    public MoeGradients backward(MoeForward forward, Tensor dOutput, Set<Freeze> frozen) {
        ReferenceForward f = requireOwn(forward);
        Checks.requireNonNull(dOutput, "dOutput");
        dOutput.requireShape("dOutput", "[tokens, modelDim]", f.tokens(), config.modelDim()).requireFinite("dOutput");
        return backward(f, dOutput.toDoubleArray(), frozen).toMoeGradients(config);
    }

    @Override
    public void close() {
        // nothing to release
    }

    // ---------------------------------------------------------------------------------------------
    // Stage 1: router

    /**
     * Router input, logits, probabilities and (noisy top-k) noisy logits (SPEC §2, §6):
     * \( \tilde{x} = x \odot u \) (jitter, training), \( z = \tilde{x} W_r + b_r \), \( p = \operatorname{softmax}(z) \),
     * \( H = z + \varepsilon \odot \sigma \).
     *
     * @throws NonFiniteException if x or a logit is not finite
     */
    public RouterOutput router(double[] x, int tokens, ForwardOptions options) {
        Checks.requireNonNull(options, "options");
        Checks.requireNonNegative(tokens, "tokens");
        int d = config.modelDim();
        int e = config.experts();
        if (x.length != tokens * d) {
            throw new IllegalArgumentException("input has " + x.length + " values but [tokens, modelDim] = [" + tokens + ", " + d + "] needs " + tokens * d);
        }
        requireFinite(x, "input", tokens, d);
        options.validate(tokens);
        RouterNoise noise = options.noiseFor(config, tokens);

        double[] routerInput = x;
        double[] expertInput = x;
        if (noise.jitter() != null) {
            routerInput = new double[x.length];
            for (int i = 0; i < x.length; i++) {
                routerInput[i] = x[i] * noise.jitter().get(i);
            }
            TokenChoiceRouterConfig tc = (TokenChoiceRouterConfig) config.router();
            if (tc.jitterTarget() == TokenChoiceRouterConfig.JitterTarget.ROUTER_AND_EXPERTS) {
                expertInput = routerInput;
            }
        }
        double[] z = matmul(routerInput, tokens, d, weights.router(), e, weights.routerBias());
        requireFinite(z, "router logits", tokens, e);
        double[] p = Softmax.rows(z, tokens, e);

        double[] keys = z;
        double[] rawStd = null;
        double[] sigma = null;
        double[] eps = null;
        double[] probInTopK = null;
        if (config.router() instanceof NoisyTopKRouterConfig n && n.noise() == NoisyTopKRouterConfig.Noise.LEARNED
                && options.mode() == Mode.TRAINING) {
            rawStd = matmul(x, tokens, d, weights.noiseRouter(), e, null);
            sigma = new double[tokens * e];
            eps = new double[tokens * e];
            keys = new double[tokens * e];
            for (int i = 0; i < keys.length; i++) {
                sigma[i] = NoisyTopKRouter.noiseStd(rawStd[i], n.noiseEpsilon());
                eps[i] = noise.logitNoise().get(i);
                keys[i] = z[i] + eps[i] * sigma[i];
            }
            if (n.k() < e) {
                probInTopK = new double[tokens * e];
                for (int t = 0; t < tokens; t++) {
                    int[] order = TopK.ofRow(keys, t * e, e, n.k() + 1);
                    double[] prob = NoisyTopKRouter.probInTopK(z, keys, sigma, t * e, e, order, n.k());
                    System.arraycopy(prob, 0, probInTopK, t * e, e);
                }
            }
        }
        double[] uniforms = noise.secondExpertUniform() == null ? null : noise.secondExpertUniform().toDoubleArray();
        boolean[] real = new boolean[tokens];
        for (int t = 0; t < tokens; t++) {
            real[t] = options.paddingMask() == null || options.paddingMask().get(t) == 1f;
        }
        double[] jitter = noise.jitter() == null ? null : noise.jitter().toDoubleArray();
        return new RouterOutput(routerInput, expertInput, z, p, keys, rawStd, sigma, eps, probInTopK, uniforms, real, jitter);
    }

    /**
     * \( a b + \mathit{bias} \) for a [rows, inner] times [inner, cols]; each sum starts from its bias
     * and adds in increasing inner index (the loops run along b's rows, which changes no sum's order).
     */
    private static double[] matmul(double[] a, int rows, int inner, double[] b, int cols, double[] bias) {
        double[] c = new double[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < cols; j++) {
                c[r * cols + j] = bias == null ? 0 : bias[j];
            }
            for (int i = 0; i < inner; i++) {
                double ari = a[r * inner + i];
                for (int j = 0; j < cols; j++) {
                    c[r * cols + j] += ari * b[i * cols + j];
                }
            }
        }
        return c;
    }

    private static void requireFinite(double[] v, String name, int rows, int cols) {
        for (int i = 0; i < v.length; i++) {
            if (!Double.isFinite(v[i])) {
                throw new NonFiniteException(name, i, new int[] {rows, cols}, v[i]);
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Stage 2: routing

    /** Whether token t is routed at all (padding tokens are not, under {@link PaddingPolicy#NOT_ROUTED}). */
    private boolean routed(RouterOutput r, int t) {
        return r.realTokens()[t] || config.padding() == PaddingPolicy.ROUTED;
    }

    /**
     * Selection, capacity slots and gates for every group (SPEC §3, §4, §4a, §6, §7).
     */
    public RoutingPlan route(RouterOutput r, ForwardOptions options) {
        int tokens = r.realTokens().length;
        if (config.router() instanceof ExpertChoiceRouterConfig) {
            return routeExpertChoice(r, options.groups());
        }
        int e = config.experts();
        int k = config.topK();
        int[] selected = new int[tokens * k];
        java.util.Arrays.fill(selected, -1);
        for (int t = 0; t < tokens; t++) {
            if (routed(r, t)) {
                System.arraycopy(TopK.ofRow(r.keys(), t * e, e, k), 0, selected, t * k, k);
            }
        }
        boolean[] policyDropped = new boolean[tokens * k];
        if (config.router() instanceof TokenChoiceRouterConfig tc && tc.secondExpertPolicy().kind() == SecondExpertPolicy.Kind.RANDOM
                && r.secondExpertUniform() != null) {
            for (int t = 0; t < tokens; t++) {
                if (selected[t * k] < 0) {
                    continue;
                }
                double g1 = gatesBefore(r, t, selected)[1];
                policyDropped[t * k + 1] = !TokenChoiceRouter.keepsSecondExpert(g1, r.secondExpertUniform()[t], tc.secondExpertPolicy().threshold());
            }
        }
        return assignTokenChoice(r, selected, policyDropped, options.groups());
    }

    /**
     * Takes a routing decided elsewhere: its selection, and which of its assignments were kept, are
     * used as they are; gates are recomputed from this layer's logits.
     *
     * @throws IllegalArgumentException if the routing does not fit this call
     */
    public RoutingPlan adoptRouting(RouterOutput r, Routing routing, ForwardOptions options) {
        int tokens = r.realTokens().length;
        int e = config.experts();
        int m = config.choicesPerToken();
        if (routing.tokens() != tokens || routing.experts() != e || routing.choicesPerToken() != m || routing.groups() != options.groups()) {
            throw new IllegalArgumentException("routing is for T=" + routing.tokens() + ", E=" + routing.experts() + ", choices="
                    + routing.choicesPerToken() + ", G=" + routing.groups() + " but this call has T=" + tokens + ", E=" + e
                    + ", choices=" + m + ", G=" + options.groups());
        }
        int[] selected = routing.experts2d();
        int[] slot = routing.slots();
        for (int i = 0; i < selected.length; i++) {
            if (selected[i] < -1 || selected[i] >= e) {
                throw new IllegalArgumentException("routing.expert[" + i / m + ", " + i % m + "] = " + selected[i] + " is not in [-1, " + e + ")");
            }
        }
        double[] before = new double[tokens * m];
        double[] gate = new double[tokens * m];
        int[] kept = new int[e];
        int[] load = new int[e];
        for (int t = 0; t < tokens; t++) {
            if (config.router() instanceof ExpertChoiceRouterConfig) {
                for (int j = 0; j < m; j++) {
                    if (selected[t * m + j] >= 0) {
                        before[t * m + j] = r.probs()[t * e + j];
                        gate[t * m + j] = slot[t * m + j] >= 0 ? before[t * m + j] : 0;
                    }
                }
            } else if (selected[t * m] >= 0) {
                System.arraycopy(gatesBefore(r, t, selected), 0, before, t * m, m);
                boolean[] keptRow = new boolean[m];
                for (int j = 0; j < m; j++) {
                    keptRow[j] = slot[t * m + j] >= 0;
                }
                System.arraycopy(gatesAfter(r, t, selected, keptRow), 0, gate, t * m, m);
            }
            for (int j = 0; j < m; j++) {
                int ex = selected[t * m + j];
                if (ex >= 0) {
                    load[ex]++;
                    kept[ex] += slot[t * m + j] >= 0 ? 1 : 0;
                }
            }
        }
        return new RoutingPlan(tokens, e, m, options.groups(), routing.capacity(), selected, before, slot, gate, load, kept);
    }

    /** The selected row of token t as an array. */
    private int[] row(int[] selected, int t, int k) {
        int[] s = new int[k];
        System.arraycopy(selected, t * k, s, 0, k);
        return s;
    }

    /** Gates of token t before capacity: noisy top-k softmaxes the selected H; token choice per its normalisation. */
    private double[] gatesBefore(RouterOutput r, int t, int[] selected) {
        int e = config.experts();
        int k = config.topK();
        int[] s = row(selected, t, k);
        if (config.router() instanceof NoisyTopKRouterConfig) {
            return Softmax.overSubset(r.keys(), t * e, s);
        }
        TokenChoiceRouterConfig tc = (TokenChoiceRouterConfig) config.router();
        return TokenChoiceRouter.gatesBeforeCapacity(tc.gates(), r.logits(), r.probs(), t * e, s);
    }

    /** Gates of token t once dropping is known. */
    private double[] gatesAfter(RouterOutput r, int t, int[] selected, boolean[] kept) {
        int e = config.experts();
        int k = config.topK();
        int[] s = row(selected, t, k);
        if (config.router() instanceof NoisyTopKRouterConfig) {
            double[] g = Softmax.overSubset(r.keys(), t * e, s);
            for (int j = 0; j < k; j++) {
                g[j] = kept[j] ? g[j] : 0;
            }
            return g;
        }
        return TokenChoiceRouter.gatesAfterCapacity((TokenChoiceRouterConfig) config.router(), r.logits(), r.probs(), t * e, s, kept);
    }

    /** The gate a priority rule ranks by: p for NONE and for renormalisation after capacity, else the renormalised gate. */
    private double priorityGate(RouterOutput r, int t, int j, int[] selected, double[] before) {
        if (config.router() instanceof TokenChoiceRouterConfig tc && tc.gates() == GateNormalization.RENORMALIZE
                && tc.renormTiming() == io.github.moe4j.api.RenormTiming.AFTER_CAPACITY) {
            return r.probs()[t * config.experts() + selected[t * config.topK() + j]];
        }
        return before[t * config.topK() + j];
    }

    private RoutingPlan assignTokenChoice(RouterOutput r, int[] selected, boolean[] policyDropped, int groups) {
        int tokens = r.realTokens().length;
        int e = config.experts();
        int k = config.topK();
        int groupSize = tokens / groups;
        int capacity = config.capacityPerExpert(groupSize);
        double[] before = new double[tokens * k];
        for (int t = 0; t < tokens; t++) {
            if (selected[t * k] >= 0) {
                System.arraycopy(gatesBefore(r, t, selected), 0, before, t * k, k);
            }
        }
        int[] slot = new int[tokens * k];
        java.util.Arrays.fill(slot, -1);
        for (int g = 0; g < groups; g++) {
            List<CapacityAssigner.Assignment> asks = new ArrayList<>();
            List<Integer> where = new ArrayList<>();
            for (int t = g * groupSize; t < (g + 1) * groupSize; t++) {
                for (int j = 0; j < k; j++) {
                    int ex = selected[t * k + j];
                    if (ex >= 0 && !policyDropped[t * k + j]) {
                        double top1 = r.probs()[t * e + selected[t * k]];
                        asks.add(new CapacityAssigner.Assignment(t, j, ex, priorityGate(r, t, j, selected, before), top1));
                        where.add(t * k + j);
                    }
                }
            }
            int[] s = CapacityAssigner.assign(asks, e, capacity, config.priority());
            for (int i = 0; i < s.length; i++) {
                slot[where.get(i)] = s[i];
            }
        }
        double[] gate = new double[tokens * k];
        int[] load = new int[e];
        int[] kept = new int[e];
        for (int t = 0; t < tokens; t++) {
            if (selected[t * k] < 0) {
                continue;
            }
            boolean[] keptRow = new boolean[k];
            for (int j = 0; j < k; j++) {
                keptRow[j] = slot[t * k + j] >= 0;
                load[selected[t * k + j]]++;
                kept[selected[t * k + j]] += keptRow[j] ? 1 : 0;
            }
            System.arraycopy(gatesAfter(r, t, selected, keptRow), 0, gate, t * k, k);
        }
        return new RoutingPlan(tokens, e, k, groups, capacity, selected, before, slot, gate, load, kept);
    }

    private RoutingPlan routeExpertChoice(RouterOutput r, int groups) {
        int tokens = r.realTokens().length;
        int e = config.experts();
        int groupSize = tokens / groups;
        int capacity = config.capacityPerExpert(groupSize);
        int[] selected = new int[tokens * e];
        int[] slot = new int[tokens * e];
        java.util.Arrays.fill(selected, -1);
        java.util.Arrays.fill(slot, -1);
        double[] gate = new double[tokens * e];
        int[] load = new int[e];
        for (int g = 0; g < groups; g++) {
            List<Integer> eligible = new ArrayList<>();
            for (int t = g * groupSize; t < (g + 1) * groupSize; t++) {
                if (routed(r, t)) {
                    eligible.add(t);
                }
            }
            for (int ex = 0; ex < e; ex++) {
                int[] taken = ExpertChoiceRouter.tokensFor(r.probs(), e, ex, eligible, capacity);
                for (int c = 0; c < taken.length; c++) {
                    int t = taken[c];
                    selected[t * e + ex] = ex;
                    slot[t * e + ex] = c;
                    gate[t * e + ex] = r.probs()[t * e + ex];
                }
                load[ex] += taken.length;
            }
        }
        return new RoutingPlan(tokens, e, e, groups, capacity, selected, gate.clone(), slot, gate, load, load.clone());
    }

    // ---------------------------------------------------------------------------------------------
    // Stages 3-5: dispatch, experts, combine

    /**
     * Each expert's rows: the kept assignments of expert e in (group, slot) order.
     *
     * @param tokenOf  per expert, the token of each row
     * @param choiceOf per expert, the choice index of each row
     * @param rowOf    [T, m] the row of each kept assignment in its expert's list, -1 if not kept
     * @param inputs   per expert, [rows, d] the dispatched inputs
     */
    public record Dispatch(int[][] tokenOf, int[][] choiceOf, int[] rowOf, double[][] inputs) {}

    /**
     * The expert outputs of every dispatched row.
     *
     * @param activations per expert, per row: pre-activations, hidden vector and output
     */
    public record ExpertOutputs(ExpertNetwork.Activations[][] activations) {}

    /** Gathers each expert's rows (SPEC §4: index dispatch, no dense [T, E, C] tensor). */
    public Dispatch dispatch(double[] x, RoutingPlan plan) {
        int tokens = plan.tokens();
        int m = plan.choices();
        int e = plan.experts();
        int d = config.modelDim();
        int groupSize = plan.groups() == 0 ? 0 : tokens / plan.groups();
        List<List<int[]>> rows = new ArrayList<>();
        for (int ex = 0; ex < e; ex++) {
            rows.add(new ArrayList<>());
        }
        for (int t = 0; t < tokens; t++) {
            for (int j = 0; j < m; j++) {
                int s = plan.slot()[t * m + j];
                if (s >= 0) {
                    rows.get(plan.selected()[t * m + j]).add(new int[] {t / Math.max(1, groupSize), s, t, j});
                }
            }
        }
        int[][] tokenOf = new int[e][];
        int[][] choiceOf = new int[e][];
        double[][] inputs = new double[e][];
        int[] rowOf = new int[tokens * m];
        java.util.Arrays.fill(rowOf, -1);
        for (int ex = 0; ex < e; ex++) {
            List<int[]> list = rows.get(ex);
            list.sort((a, b) -> a[0] != b[0] ? Integer.compare(a[0], b[0]) : Integer.compare(a[1], b[1]));
            tokenOf[ex] = new int[list.size()];
            choiceOf[ex] = new int[list.size()];
            inputs[ex] = new double[list.size() * d];
            for (int i = 0; i < list.size(); i++) {
                int t = list.get(i)[2];
                tokenOf[ex][i] = t;
                choiceOf[ex][i] = list.get(i)[3];
                rowOf[t * m + list.get(i)[3]] = i;
                System.arraycopy(x, t * d, inputs[ex], i * d, d);
            }
        }
        return new Dispatch(tokenOf, choiceOf, rowOf, inputs);
    }

    /** \( f_e \) of every row of every expert, each expert's rows together (its weights read once). */
    public ExpertOutputs experts(Dispatch dispatch) {
        int e = config.experts();
        ExpertNetwork.Activations[][] out = new ExpertNetwork.Activations[e][];
        for (int ex = 0; ex < e; ex++) {
            out[ex] = ExpertNetwork.forward(weights, config.activation(), ex, dispatch.inputs()[ex], 0, dispatch.tokenOf()[ex].length);
        }
        return new ExpertOutputs(out);
    }

    /**
     * \( y_t = \sum_j g_{t,j} f_{S_t[j]}(x_t) \) over the kept choices in rank order (rank 0 first);
     * each token gathers, nothing is scattered. A token with nothing kept outputs exactly 0.
     */
    public double[] combine(ExpertOutputs outputs, Dispatch dispatch, RoutingPlan plan) {
        int tokens = plan.tokens();
        int m = plan.choices();
        int d = config.modelDim();
        double[] y = new double[tokens * d];
        for (int t = 0; t < tokens; t++) {
            for (int j = 0; j < m; j++) {
                int row = dispatch.rowOf()[t * m + j];
                if (row < 0) {
                    continue;
                }
                double g = plan.gate()[t * m + j];
                double[] f = outputs.activations()[plan.selected()[t * m + j]][row].output();
                for (int c = 0; c < d; c++) {
                    y[t * d + c] += g * f[c];
                }
            }
        }
        return y;
    }

    // ---------------------------------------------------------------------------------------------
    // Stage 6: losses

    /**
     * Every auxiliary loss, per group over its real tokens, averaged over groups (SPEC §4a, §5, §6).
     *
     * @param noisyStats if not null, receives [G, E] importance at 0 and [G, E] Load at 1 (noisy top-k)
     */
    public MoeLosses losses(RouterOutput r, RoutingPlan plan, ForwardOptions options, double[][] noisyStats) {
        int tokens = plan.tokens();
        int groups = plan.groups();
        int e = config.experts();
        int groupSize = tokens / groups;
        double aux = 0;
        double z = 0;
        double importanceLoss = 0;
        double loadLoss = 0;
        boolean noisy = config.router() instanceof NoisyTopKRouterConfig;
        double[] importanceAll = noisy ? new double[groups * e] : null;
        double[] loadAll = noisy ? new double[groups * e] : null;
        for (int g = 0; g < groups; g++) {
            int[] real = r.realTokens(g, groupSize);
            z += RouterZLoss.value(r.logits(), e, real);
            if (config.router() instanceof TokenChoiceRouterConfig) {
                double[] f = LoadBalancingLoss.dispatchFraction(plan.selected(), config.topK(), e, real, config.losses().auxNormalization());
                aux += LoadBalancingLoss.value(f, LoadBalancingLoss.meanProbability(r.probs(), e, real));
            }
            if (noisy) {
                int k = config.topK();
                double[] importance = ImportanceLoss.importance(plan.selected(), plan.gateBeforeCapacity(), k, e, real);
                double[] load = r.probInTopK() != null ? LoadLoss.smoothLoad(r.probInTopK(), e, real)
                        : LoadLoss.countLoad(plan.selected(), k, e, real);
                importanceLoss += ImportanceLoss.value(importance);
                loadLoss += LoadLoss.value(load);
                System.arraycopy(importance, 0, importanceAll, g * e, e);
                System.arraycopy(load, 0, loadAll, g * e, e);
            }
        }
        if (noisyStats != null) {
            noisyStats[0] = importanceAll;
            noisyStats[1] = loadAll;
        }
        return MoeLosses.weighted(aux / groups, z / groups, importanceLoss / groups, loadLoss / groups, config.losses());
    }

    // ---------------------------------------------------------------------------------------------
    // Backward (SPEC §10): checks the arguments here; the stages in reverse are ReferenceBackward's.

    /**
     * Gradients of \( L = \sum dY \odot y + \alpha L_{aux} + \beta L_z + w_{imp} L_{imp} + w_{load} L_{load} \)
     * (the coefficients of {@link MoeConfig#losses()}) with respect to the input and every parameter
     * not in {@code frozen} (SPEC §10). A frozen group's components are null and its weight-gradient
     * work is skipped ({@link ReferenceGradients#work()} counts it); the input's gradient is exact
     * either way.
     *
     * @param forward what this layer's {@link #forward(double[], int, ForwardOptions)} returned
     * @param dY      \( \partial L / \partial y \), [T, d]
     * @param frozen  parameter groups that get no gradient
     * @throws IllegalArgumentException if {@code forward} did not come from this layer or {@code dY} is not [T, d]
     * @throws NonFiniteException       if {@code dY} holds a NaN or infinity
     */
    public ReferenceGradients backward(ReferenceForward forward, double[] dY, Set<Freeze> frozen) {
        ReferenceForward f = requireOwn(forward);
        Checks.requireNonNull(dY, "dY");
        Checks.requireNonNull(frozen, "frozen");
        int tokens = f.tokens();
        int d = config.modelDim();
        if (dY.length != tokens * d) {
            throw new IllegalArgumentException("dY has " + dY.length + " values but [tokens, modelDim] = [" + tokens + ", " + d
                    + "] needs " + tokens * d);
        }
        requireFinite(dY, "dY", tokens, d);
        return backwardPass.gradients(f, dY, frozen);
    }

    /**
     * Gradients of \( L = \sum dG \odot g + \) the weighted losses, where g is the combine weight
     * ({@link RoutingPlan#gate()}): the router half of {@link #backward(ReferenceForward, double[], Set)},
     * for checking a router against gate gradients alone. Expert components are null (neither the
     * gates nor the losses depend on the experts); the input's gradient is the router path only.
     *
     * @param forward what this layer's forward returned
     * @param dGate   \( \partial L / \partial g \), [T, m] like {@link RoutingPlan#gate()}; entries of dropped or absent choices are ignored
     * @param frozen  parameter groups that get no gradient
     * @throws IllegalArgumentException if {@code forward} did not come from this layer or {@code dGate} is not [T, m]
     */
    public ReferenceGradients backwardFromGates(ReferenceForward forward, double[] dGate, Set<Freeze> frozen) {
        ReferenceForward f = requireOwn(forward);
        Checks.requireNonNull(dGate, "dGate");
        Checks.requireNonNull(frozen, "frozen");
        int tokens = f.tokens();
        int m = f.plan().choices();
        if (dGate.length != tokens * m) {
            throw new IllegalArgumentException("dGate has " + dGate.length + " values but [tokens, choices] = [" + tokens + ", " + m
                    + "] needs " + tokens * m);
        }
        requireFinite(dGate, "dGate", tokens, m);
        return backwardPass.routerOnly(f, dGate.clone(), ReferenceBackward.LossCoefficients.of(config.losses()), frozen);
    }

    /**
     * Gradients of one auxiliary loss alone, unweighted (coefficient 1 whatever the configuration
     * says), with respect to the input and the router's parameters; expert components are null.
     * A loss the router does not define (e.g. {@link LossTerm#AUX} for expert choice) gives zeros.
     *
     * @param forward what this layer's forward returned
     * @param term    the loss
     * @param frozen  parameter groups that get no gradient
     */
    public ReferenceGradients lossGradients(ReferenceForward forward, LossTerm term, Set<Freeze> frozen) {
        ReferenceForward f = requireOwn(forward);
        Checks.requireNonNull(term, "term");
        Checks.requireNonNull(frozen, "frozen");
        return backwardPass.routerOnly(f, new double[f.tokens() * f.plan().choices()], ReferenceBackward.LossCoefficients.of(term),
                frozen);
    }

    /**
     * \( \partial L_{term} / \partial z \), [T, E], of one auxiliary loss alone, unweighted, where z are
     * the (clean) router logits of {@link RouterOutput#logits()}. For noisy top-k this includes what
     * reaches z through H = z + εσ; what reaches σ is in {@link #lossGradients}.
     *
     * @param forward what this layer's forward returned
     * @param term    the loss
     */
    public double[] logitGradient(ReferenceForward forward, LossTerm term) {
        ReferenceForward f = requireOwn(forward);
        Checks.requireNonNull(term, "term");
        return backwardPass.logitGradient(f, new double[f.tokens() * f.plan().choices()], ReferenceBackward.LossCoefficients.of(term));
    }

    /** \( \partial (\sum dG \odot g) / \partial z \), [T, E], without any loss: for tests of the gate backward. */
    double[] logitGradientFromGates(ReferenceForward forward, double[] dGate) {
        ReferenceForward f = requireOwn(forward);
        return backwardPass.logitGradient(f, dGate.clone(), new ReferenceBackward.LossCoefficients(0, 0, 0, 0));
    }

    private ReferenceForward requireOwn(MoeForward forward) {
        Checks.requireNonNull(forward, "forward");
        if (!(forward instanceof ReferenceForward f) || f.layer() != this) {
            throw new IllegalArgumentException("forward was not returned by this layer's forward (it came from "
                    + (forward instanceof ReferenceForward f ? "another ReferenceLayer" : forward.getClass().getName())
                    + "). Hint: pass backward the MoeForward that this layer's forward returned");
        }
        return f;
    }

}

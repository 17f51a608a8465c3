package io.github.moe4j.conformance;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.AuxNormalization;
import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.CapacityBase;
import io.github.moe4j.api.ExpertChoiceRouterConfig;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.GateNormalization;
import io.github.moe4j.api.LossWeights;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.PaddingPolicy;
import io.github.moe4j.api.Presets;
import io.github.moe4j.api.Priority;
import io.github.moe4j.api.RenormTiming;
import io.github.moe4j.api.Rounding;
import io.github.moe4j.api.RouterNoise;
import io.github.moe4j.api.Routing;
import io.github.moe4j.api.SecondExpertPolicy;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import io.github.moe4j.reference.ReferenceWeights;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.Function;

/**
 * A golden case mapped to moe4j: the configuration that names its implementation's conventions,
 * its weights and input rounded to float32 (as a backend receives them), the options of the call,
 * and what to compare; the reference's own double-precision golden test uses the same mapping.
 * Hugging Face stores {@code nn.Linear}
 * weights as [out, in] and moe4j as [in, out], so they are transposed; router-only cases
 * (tensor2tensor, flaxformer) get seeded random experts, which they do not check.
 *
 * <p>It keeps the case's weights and input exactly (double), for the reference's own
 * double-precision check of the same cases, and rounds them to float32 for a backend
 * ({@link #weights()}, {@link #input()}).
 *
 * @param golden       the case
 * @param config       the layer
 * @param exactWeights the case's weights, in moe4j's layout, exactly
 * @param exactInput   the case's input [T, d], exactly
 * @param options      the call's options
 * @param expectations what the backend's forward result must reproduce
 */
public record GoldenSetup(GoldenCase golden, MoeConfig config, ReferenceWeights exactWeights, double[] exactInput,
                          ForwardOptions options, List<Expectation> expectations) {

    /** The weights rounded to float32, as a backend receives them. */
    public MoeWeights weights() {
        ReferenceWeights w = exactWeights;
        int d = w.d();
        int h = w.h();
        int e = w.experts();
        return new MoeWeights(tensor(w.router(), d, e), w.routerBias() == null ? null : tensor(w.routerBias(), e),
                w.noiseRouter() == null ? null : tensor(w.noiseRouter(), d, e), tensor(w.wIn(), e, d, h),
                w.wGate() == null ? null : tensor(w.wGate(), e, d, h), tensor(w.wOut(), e, h, d),
                w.bIn() == null ? null : tensor(w.bIn(), e, h), w.bOut() == null ? null : tensor(w.bOut(), e, d));
    }

    /** The input rounded to float32, [T, d]. */
    public Tensor input() {
        return tensor(exactInput, exactInput.length / config.modelDim(), config.modelDim());
    }

    /** Which tolerance a quantity is held to. */
    public enum Kind {
        /** Compared exactly (routing decisions and counts). */
        EXACT,
        /** {@link Tolerances#gates}. */
        GATES,
        /** {@link Tolerances#output}. */
        OUTPUT,
        /** {@link Tolerances#aux}. */
        AUX,
        /** {@link Tolerances#z}. */
        Z,
        /** {@link Tolerances#importance}. */
        IMPORTANCE,
        /** {@link Tolerances#load}. */
        LOAD,
        /** {@link Tolerances#total}. */
        TOTAL
    }

    /**
     * One stored quantity and how to read it from the backend's forward result.
     *
     * @param name  the golden tensor's name (and how it was derived, if it was)
     * @param shape its shape
     * @param want  the stored values
     * @param kind  its tolerance
     * @param got   reads the same quantity from the backend's result
     */
    public record Expectation(String name, int[] shape, double[] want, Kind kind, Function<MoeForward, double[]> got) {}

    /** The setup of a golden case. */
    public static GoldenSetup of(GoldenCase c) {
        return switch (c.implementation()) {
            case "hf-switch" -> hfSwitch(c);
            case "hf-mixtral" -> hfMixtral(c);
            case "deepspeed" -> deepSpeed(c);
            case "t2t-noisy-topk" -> noisyTopK(c);
            case "flaxformer-tc" -> flaxformer(c, false);
            case "flaxformer-ec" -> flaxformer(c, true);
            default -> throw new IllegalStateException(c.id() + ": no mapping for implementation " + c.implementation());
        };
    }

    // ---------------------------------------------------------------------------------------------

    private static GoldenSetup hfSwitch(GoldenCase c) {
        int b = c.hpInt("B");
        int t = c.hpInt("T");
        int d = c.hpInt("d");
        int h = c.hpInt("h");
        int e = c.hpInt("E");
        MoeConfig config = Presets.switchTop1().modelDim(d).hiddenDim(h).experts(e).activation(activation(c.hp("dense_act_fn")))
                .router(new TokenChoiceRouterConfig(1, GateNormalization.NONE, RenormTiming.BEFORE_CAPACITY, SecondExpertPolicy.ALL, 0,
                        TokenChoiceRouterConfig.JitterTarget.ROUTER_ONLY))
                .capacity(Capacity.fixed(c.hpInt("expert_capacity"))).routerBias(c.hpBool("router_bias"))
                .losses(LossWeights.of().aux(c.hpDouble("aux_coef"), AuxNormalization.TOP1).z(c.hpDouble("z_coef"))).build();
        ReferenceWeights w = new ReferenceWeights(d, h, e, transpose(c.tensor("router_weight"), e, d),
                c.has("router_bias") ? c.tensor("router_bias") : null, null, transposeEach(c.tensor("wi"), e, h, d),
                null, transposeEach(c.tensor("wo"), e, d, h), null, null);
        List<Expectation> x = new ArrayList<>();
        x.add(new Expectation("top1_expert", new int[] {t}, c.tensor("top1_expert"), Kind.EXACT, f -> column(f.routing(), 0, false)));
        x.add(new Expectation("kept_mask", new int[] {t}, c.tensor("kept_mask"), Kind.EXACT, f -> keptColumn(f.routing(), 0)));
        x.add(new Expectation("expert_index (one-hot after capacity)", new int[] {t, e}, c.tensor("expert_index"), Kind.EXACT,
                f -> oneHotKept(f.routing())));
        x.add(new Expectation("router_prob_top1 where kept (the gate of a dropped token is 0)", new int[] {t},
                masked(c.tensor("router_prob_top1"), c.tensor("kept_mask")), Kind.GATES, f -> column(f.routing(), 0, true)));
        x.add(new Expectation("top1_demand_per_expert", new int[] {e}, c.tensor("top1_demand_per_expert"), Kind.EXACT, f -> doubles(f.routing().load())));
        x.add(new Expectation("out", new int[] {t, d}, c.tensor("out"), Kind.OUTPUT, f -> f.output().toDoubleArray()));
        x.add(new Expectation("z_loss", new int[] {1}, c.tensor("z_loss"), Kind.Z, f -> new double[] {f.losses().z()}));
        x.add(new Expectation("aux_loss", new int[] {1}, c.tensor("aux_loss"), Kind.AUX, f -> new double[] {f.losses().aux()}));
        x.add(totalOf(c, "out", "dY"));
        return new GoldenSetup(c, config, w, c.tensor("x"), ForwardOptions.inference().withGroups(b), x);
    }

    private static GoldenSetup hfMixtral(GoldenCase c) {
        int t = c.hpInt("T");
        int d = c.hpInt("d");
        int h = c.hpInt("h");
        int e = c.hpInt("E");
        int k = c.hpInt("k");
        MoeConfig config = Presets.mixtral().modelDim(d).hiddenDim(h).experts(e).router(TokenChoiceRouterConfig.topK(k))
                .losses(LossWeights.of().aux(c.hpDouble("aux_coef"), AuxNormalization.TOPK_COUNT)).padding(PaddingPolicy.ROUTED).build();
        ReferenceWeights w = new ReferenceWeights(d, h, e, transpose(c.tensor("router_weight"), e, d), null, null,
                transposeEach(c.tensor("w1"), e, h, d), transposeEach(c.tensor("w3"), e, h, d),
                transposeEach(c.tensor("w2"), e, d, h), null, null);
        ForwardOptions options = ForwardOptions.inference();
        if (c.has("attention_mask")) {
            options = options.withPaddingMask(tensor(c.tensor("attention_mask"), t));
        }
        List<Expectation> x = new ArrayList<>();
        x.add(new Expectation("selected_experts", new int[] {t, k}, c.tensor("selected_experts"), Kind.EXACT, f -> doubles(f.routing().experts2d())));
        x.add(new Expectation("routing_weights", new int[] {t, k}, c.tensor("routing_weights"), Kind.GATES, f -> floats(f.routing().gates())));
        x.add(new Expectation("tokens_per_expert", new int[] {e}, c.tensor("tokens_per_expert"), Kind.EXACT, f -> doubles(f.routing().load())));
        x.add(new Expectation("out", new int[] {t, d}, c.tensor("out"), Kind.OUTPUT, f -> f.output().toDoubleArray()));
        x.add(new Expectation("aux_loss", new int[] {1}, c.tensor("aux_loss"), Kind.AUX, f -> new double[] {f.losses().aux()}));
        x.add(totalOf(c, "out", "dY"));
        return new GoldenSetup(c, config, w, c.tensor("x"), options, x);
    }

    private static GoldenSetup deepSpeed(GoldenCase c) {
        int t = c.hpInt("T");
        int d = c.hpInt("d");
        int h = c.hpInt("h");
        int e = c.hpInt("E");
        int k = c.hpInt("k");
        MoeConfig.Builder builder = k == 1 ? Presets.deepSpeedTop1() : k == 2 ? Presets.deepSpeedTop2() : Presets.deepSpeedTopK(k);
        if (k > 2 && "position".equals(c.hp("drop_policy"))) {
            builder.priority(Priority.TOKEN_MAJOR);
        }
        MoeConfig config = builder.modelDim(d).hiddenDim(h).experts(e)
                .capacity(Capacity.factor(c.hpDouble("capacity_factor"), CapacityBase.ASSIGNMENTS, Rounding.CEIL, c.hpInt("min_capacity")))
                .losses(LossWeights.of().aux(c.hpDouble("aux_coef"), k <= 2 ? AuxNormalization.TOP1 : AuxNormalization.TOPK_NORMALIZED))
                .build();
        ReferenceWeights w = new ReferenceWeights(d, h, e, transpose(c.tensor("wg"), e, d), null, null,
                transposeEach(c.tensor("expert_w1"), e, h, d), null, transposeEach(c.tensor("expert_w2"), e, d, h),
                c.tensor("expert_b1"), c.tensor("expert_b2"));
        List<Expectation> x = new ArrayList<>();
        x.add(new Expectation("capacity", new int[] {1}, c.tensor("capacity"), Kind.EXACT, f -> new double[] {f.routing().capacity()}));
        x.add(new Expectation("exp_counts", new int[] {e}, c.tensor("exp_counts"), Kind.EXACT, f -> doubles(f.routing().load())));
        x.add(new Expectation("route_expert [k, T] (-1 where dropped)", new int[] {k, t}, c.tensor("route_expert"), Kind.EXACT,
                f -> byRank(f.routing(), (r, i, j) -> r.isKept(i, j) ? r.expert(i, j) : -1)));
        x.add(new Expectation("route_slot [k, T] (0 where dropped)", new int[] {k, t}, c.tensor("route_slot"), Kind.EXACT,
                f -> byRank(f.routing(), (r, i, j) -> Math.max(r.slot(i, j), 0))));
        x.add(new Expectation("route_gate [k, T]", new int[] {k, t}, c.tensor("route_gate"), Kind.GATES,
                f -> byRank(f.routing(), (r, i, j) -> r.gate(i, j))));
        x.add(new Expectation("out", new int[] {t, d}, c.tensor("out"), Kind.OUTPUT, f -> f.output().toDoubleArray()));
        x.add(new Expectation("l_aux", new int[] {1}, c.tensor("l_aux"), Kind.AUX, f -> new double[] {f.losses().aux()}));
        x.add(totalOf(c, "out", "dY"));
        return new GoldenSetup(c, config, w, c.tensor("x"), ForwardOptions.inference(), x);
    }

    private static GoldenSetup noisyTopK(GoldenCase c) {
        int t = c.hpInt("T");
        int d = c.hpInt("d");
        int e = c.hpInt("E");
        int k = c.hpInt("k");
        boolean noisy = c.hpBool("noisy_gating");
        boolean train = c.hpBool("train");
        double coef = c.hpDouble("loss_coef");
        MoeConfig config = Presets.shazeerNoisyTopK(k).modelDim(d).hiddenDim(1).experts(e)
                .router(new NoisyTopKRouterConfig(k, noisy ? NoisyTopKRouterConfig.Noise.LEARNED : NoisyTopKRouterConfig.Noise.NONE,
                        c.hpDouble("noise_epsilon")))
                .losses(LossWeights.of().importance(coef).load(coef)).build();
        ReferenceWeights w = withRandomExperts(d, 1, e, c.tensor("w_gate"), null, noisy ? c.tensor("w_noise") : null);
        ForwardOptions options = train ? ForwardOptions.training(1, 0) : ForwardOptions.inference();
        if (train && noisy) {
            options = options.withNoise(new RouterNoise(null, tensor(c.tensor("noise"), t, e), null));
        }
        List<Expectation> x = new ArrayList<>();
        x.add(new Expectation("gates [T, E]", new int[] {t, e}, c.tensor("gates"), Kind.GATES, f -> scatter(f.routing())));
        x.add(new Expectation("cv_squared_importance", new int[] {1}, c.tensor("cv_squared_importance"), Kind.IMPORTANCE,
                f -> new double[] {f.losses().importance()}));
        x.add(new Expectation("cv_squared_load", new int[] {1}, c.tensor("cv_squared_load"), Kind.LOAD, f -> new double[] {f.losses().load()}));
        x.add(new Expectation("aux_loss (the weighted total)", new int[] {1}, c.tensor("aux_loss"), Kind.TOTAL, f -> new double[] {f.losses().total()}));
        return new GoldenSetup(c, config, w, c.tensor("x"), options, x);
    }

    private static GoldenSetup flaxformer(GoldenCase c, boolean expertChoice) {
        int groups = c.hpInt("G");
        int t = groups * c.hpInt("T");
        int d = c.hpInt("d");
        int e = c.hpInt("E");
        int cap = c.hpInt("expert_capacity");
        MoeConfig.Builder b = expertChoice ? Presets.expertChoice(1.0) : Presets.stMoe();
        b.modelDim(d).hiddenDim(1).experts(e).activation(Activation.RELU).routerBias(true).capacity(Capacity.fixed(cap));
        if (expertChoice) {
            b.router(new ExpertChoiceRouterConfig()).losses(LossWeights.of().z(c.hpDouble("z_coef")));
        } else {
            b.router(TokenChoiceRouterConfig.topK(c.hpInt("num_selected_experts")).withGates(GateNormalization.NONE))
                    .priority(c.hpBool("batch_prioritized_routing") ? Priority.BATCH_PRIORITIZED : Priority.RANK_MAJOR)
                    .losses(LossWeights.of().aux(c.hpDouble("aux_coef"), AuxNormalization.TOPK_COUNT).z(c.hpDouble("z_coef")));
        }
        MoeConfig config = b.build();
        ReferenceWeights w = withRandomExperts(d, 1, e, c.tensor("router_kernel"), c.tensor("router_bias"), null);
        List<Expectation> x = new ArrayList<>();
        x.add(new Expectation("capacity", new int[] {1}, new double[] {cap}, Kind.EXACT, f -> new double[] {f.routing().capacity()}));
        x.add(new Expectation("dispatch_mask [T, E, C]", new int[] {t, e, cap}, c.tensor("dispatch_mask"), Kind.EXACT,
                f -> dispatchCombine(f.routing(), cap, false)));
        x.add(new Expectation("combine_array [T, E, C]", new int[] {t, e, cap}, c.tensor("combine_array"), Kind.GATES,
                f -> dispatchCombine(f.routing(), cap, true)));
        // flaxformer reduces both losses in float32 whatever the input dtype; that error (at most
        // G*T*E*u relative) is within the float32 loss tolerances here. loss_total is not compared:
        // it adds float32 products of the coefficients.
        x.add(new Expectation("z_loss", new int[] {1}, c.tensor("z_loss"), Kind.Z, f -> new double[] {f.losses().z()}));
        if (!expertChoice) {
            x.add(new Expectation("aux_loss", new int[] {1}, c.tensor("aux_loss"), Kind.AUX, f -> new double[] {f.losses().aux()}));
        }
        return new GoldenSetup(c, config, w, c.tensor("x"), ForwardOptions.inference().withGroups(groups), x);
    }

    // ---------------------------------------------------------------------------------------------

    /** The weighted total as the case stores it: loss_total minus the sum of dY * out. */
    private static Expectation totalOf(GoldenCase c, String out, String dY) {
        double[] y = c.tensor(out);
        double[] g = c.tensor(dY);
        double dot = 0;
        for (int i = 0; i < y.length; i++) {
            dot += y[i] * g[i];
        }
        return new Expectation("loss_total - sum(dY * out) (the weighted losses)", new int[] {1}, new double[] {c.tensor("loss_total")[0] - dot},
                Kind.TOTAL, f -> new double[] {f.losses().total()});
    }

    /** An entry of the routing as a double. */
    @FunctionalInterface
    private interface Entry {
        double of(Routing r, int token, int choice);
    }

    /** [k, T]: choice-major, as DeepSpeed's route tensors. */
    private static double[] byRank(Routing r, Entry entry) {
        int t = r.tokens();
        int k = r.choicesPerToken();
        double[] v = new double[k * t];
        for (int i = 0; i < t; i++) {
            for (int j = 0; j < k; j++) {
                v[j * t + i] = entry.of(r, i, j);
            }
        }
        return v;
    }

    private static double[] column(Routing r, int choice, boolean gate) {
        double[] v = new double[r.tokens()];
        for (int i = 0; i < v.length; i++) {
            v[i] = gate ? r.gate(i, choice) : r.expert(i, choice);
        }
        return v;
    }

    private static double[] keptColumn(Routing r, int choice) {
        double[] v = new double[r.tokens()];
        for (int i = 0; i < v.length; i++) {
            v[i] = r.isKept(i, choice) ? 1 : 0;
        }
        return v;
    }

    private static double[] oneHotKept(Routing r) {
        int e = r.experts();
        double[] v = new double[r.tokens() * e];
        for (int i = 0; i < r.tokens(); i++) {
            for (int j = 0; j < r.choicesPerToken(); j++) {
                if (r.isKept(i, j)) {
                    v[i * e + r.expert(i, j)] = 1;
                }
            }
        }
        return v;
    }

    private static double[] scatter(Routing r) {
        int e = r.experts();
        double[] v = new double[r.tokens() * e];
        for (int i = 0; i < r.tokens(); i++) {
            for (int j = 0; j < r.choicesPerToken(); j++) {
                if (r.expert(i, j) >= 0) {
                    v[i * e + r.expert(i, j)] = r.gate(i, j);
                }
            }
        }
        return v;
    }

    private static double[] dispatchCombine(Routing r, int cap, boolean combine) {
        int e = r.experts();
        double[] v = new double[r.tokens() * e * cap];
        for (int i = 0; i < r.tokens(); i++) {
            for (int j = 0; j < r.choicesPerToken(); j++) {
                int s = r.slot(i, j);
                if (s >= 0 && s < cap) {
                    v[(i * e + r.expert(i, j)) * cap + s] = combine ? r.gate(i, j) : 1;
                }
            }
        }
        return v;
    }

    private static double[] masked(double[] v, double[] mask) {
        double[] out = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = mask[i] != 0 ? v[i] : 0;
        }
        return out;
    }

    private static double[] doubles(int[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i];
        }
        return d;
    }

    private static double[] floats(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i];
        }
        return d;
    }

    private static Tensor tensor(double[] v, int... shape) {
        return Tensor.ofDoubles(v, shape);
    }

    /** [rows, cols] to [cols, rows]. */
    /** [rows, cols] to [cols, rows]: torch's nn.Linear [out, in] to moe4j's [in, out] and back. */
    public static double[] transpose(double[] a, int rows, int cols) {
        double[] out = new double[a.length];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                out[c * rows + r] = a[r * cols + c];
            }
        }
        return out;
    }

    /** [E, rows, cols] to [E, cols, rows]. */
    /** [E, rows, cols] to [E, cols, rows], one transpose per expert. */
    public static double[] transposeEach(double[] a, int experts, int rows, int cols) {
        double[] out = new double[a.length];
        for (int e = 0; e < experts; e++) {
            double[] one = transpose(java.util.Arrays.copyOfRange(a, e * rows * cols, (e + 1) * rows * cols), rows, cols);
            System.arraycopy(one, 0, out, e * rows * cols, rows * cols);
        }
        return out;
    }

    /** Router-only cases: seeded random experts (as the reference's golden test makes them). */
    private static ReferenceWeights withRandomExperts(int d, int h, int e, double[] router, double[] routerBias, double[] noiseRouter) {
        Random rng = new Random(7);
        double[] wIn = new double[e * d * h];
        double[] wOut = new double[e * h * d];
        for (int i = 0; i < wIn.length; i++) {
            wIn[i] = rng.nextGaussian();
        }
        for (int i = 0; i < wOut.length; i++) {
            wOut[i] = rng.nextGaussian();
        }
        return new ReferenceWeights(d, h, e, router, routerBias, noiseRouter, wIn, null, wOut, null, null);
    }

    private static Activation activation(String name) {
        return switch (name) {
            case "relu" -> Activation.RELU;
            case "gelu" -> Activation.GELU;
            case "gelu_new" -> Activation.GELU_TANH;
            case "silu" -> Activation.SILU;
            default -> throw new IllegalStateException("no moe4j activation for " + name);
        };
    }

    @Override
    public String toString() {
        return "golden case " + golden.id() + " from " + golden.provenance() + ": " + MoeCase.describe(config) + ", T=" + exactInput.length / config.modelDim()
                + ", " + options.mode() + ", G=" + options.groups() + (options.paddingMask() == null ? "" : ", with padding mask");
    }
}

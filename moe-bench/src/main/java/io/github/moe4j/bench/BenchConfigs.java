package io.github.moe4j.bench;

import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Presets;
import io.github.moe4j.api.Tensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * The benchmark configurations and the one place where their FLOPs are counted.
 *
 * <table>
 * <caption>Configurations (the PyTorch peer in {@code moe-bench/peer} uses the same sizes)</caption>
 * <tr><th>name</th><th>T</th><th>d</th><th>h</th><th>E</th><th>k</th><th>layer</th></tr>
 * <tr><td>S</td><td>512</td><td>256</td><td>1024</td><td>8</td><td>2</td><td>{@link Presets#mixtral()} (SwiGLU, dropless)</td></tr>
 * <tr><td>M</td><td>2048</td><td>512</td><td>2048</td><td>8</td><td>2</td><td>Mixtral</td></tr>
 * <tr><td>L</td><td>4096</td><td>1024</td><td>4096</td><td>8</td><td>2</td><td>Mixtral</td></tr>
 * <tr><td>W</td><td>2048</td><td>512</td><td>1024</td><td>64</td><td>2</td><td>Mixtral</td></tr>
 * <tr><td>Switch</td><td>2048</td><td>512</td><td>2048</td><td>16</td><td>1</td><td>{@link Presets#switchTop1()}
 *     (ReLU, capacity factor 1.25: C = 160)</td></tr>
 * <tr><td>E8</td><td>512</td><td>256</td><td>512</td><td>8</td><td>2</td><td>Mixtral (E-scaling pair)</td></tr>
 * <tr><td>E64</td><td>512</td><td>256</td><td>512</td><td>64</td><td>2</td><td>Mixtral (E-scaling pair)</td></tr>
 * <tr><td>E8-T2048</td><td>2048</td><td>256</td><td>512</td><td>8</td><td>2</td><td>Mixtral (the E-scaling pair at 4 T)</td></tr>
 * <tr><td>E64-T2048</td><td>2048</td><td>256</td><td>512</td><td>64</td><td>2</td><td>Mixtral (the E-scaling pair at 4 T)</td></tr>
 * </table>
 *
 * <p>The E-scaling pairs separate what grows with the tokens from what grows with the experts: the
 * per-token work is T·k rows through an expert, whatever E is, but every call also reads each
 * expert's weights at least once, E·d·h·3 values, whatever T is. At T = 512 and E = 64 an expert
 * gets 16 rows on average, so that one read is a visible share of the call; at T = 2048, 64 rows.
 *
 * <p><b>FLOPs</b> count the expert GEMMs only, two per multiply-add, over the kept assignments
 * (a token's choice that found a slot): forward \( 2 \cdot A \cdot d \cdot h \cdot g \) with
 * \( A \) the kept assignments (\( T k \) when nothing is dropped) and \( g \) = 3 GEMMs for a gated
 * expert (SwiGLU/GEGLU: W_in, W_gate, W_out) or 2 otherwise (W_in, W_out); forward + backward
 * counts 3 times the forward (each GEMM has two backward GEMMs: input and weight gradient). The
 * router GEMM (\( 2 T d E \)), softmax, top-k, gather, scatter and losses are not counted; the
 * router's share is reported separately by {@link #routerFlops}.
 */
public final class BenchConfigs {
    private BenchConfigs() {}

    /** The seed of every benchmark's weights. */
    public static final long WEIGHT_SEED = 7L;
    /** The seed of every benchmark's input. */
    public static final long INPUT_SEED = 11L;
    /** The seed of the training-mode forward used before backward. */
    public static final long TRAINING_SEED = 13L;

    /**
     * One named configuration: the layer and the number of tokens T of one call.
     *
     * @param name   the name used as the JMH parameter {@code config}
     * @param tokens T
     * @param config the layer
     */
    public record Shape(String name, int tokens, MoeConfig config) {
        /** d. */
        public int modelDim() {
            return config.modelDim();
        }

        /** h. */
        public int hiddenDim() {
            return config.hiddenDim();
        }

        /** E. */
        public int experts() {
            return config.experts();
        }

        /** k. */
        public int topK() {
            return config.topK();
        }

        /** T k: the assignments asked for (all kept unless the capacity drops some). */
        public long nominalAssignments() {
            return (long) tokens * config.choicesPerToken();
        }

        /** Expert-GEMM FLOPs of one forward call with every assignment kept. */
        public double nominalForwardFlops() {
            return forwardFlops(config, nominalAssignments());
        }
    }

    private static final Map<String, Shape> SHAPES = new LinkedHashMap<>();

    static {
        add("S", 512, Presets.mixtral().modelDim(256).hiddenDim(1024).experts(8));
        add("M", 2048, Presets.mixtral().modelDim(512).hiddenDim(2048).experts(8));
        add("L", 4096, Presets.mixtral().modelDim(1024).hiddenDim(4096).experts(8));
        add("W", 2048, Presets.mixtral().modelDim(512).hiddenDim(1024).experts(64));
        add("Switch", 2048, Presets.switchTop1().modelDim(512).hiddenDim(2048).experts(16));
        add("E8", 512, Presets.mixtral().modelDim(256).hiddenDim(512).experts(8));
        add("E64", 512, Presets.mixtral().modelDim(256).hiddenDim(512).experts(64));
        add("E8-T2048", 2048, Presets.mixtral().modelDim(256).hiddenDim(512).experts(8));
        add("E64-T2048", 2048, Presets.mixtral().modelDim(256).hiddenDim(512).experts(64));
    }

    private static void add(String name, int tokens, MoeConfig.Builder b) {
        SHAPES.put(name, new Shape(name, tokens, b.build()));
    }

    /** Every configuration name, in the order of the table above. */
    public static List<String> names() {
        return List.copyOf(SHAPES.keySet());
    }

    /**
     * The configuration of that name.
     *
     * @throws IllegalArgumentException naming the configurations there are
     */
    public static Shape shape(String name) {
        Shape s = SHAPES.get(name);
        if (s == null) {
            throw new IllegalArgumentException("no benchmark configuration '" + name + "'; there are " + names());
        }
        return s;
    }

    /** GEMMs per assignment in the forward pass: 3 for a gated expert, 2 otherwise. */
    public static int gemmsPerAssignment(MoeConfig config) {
        return config.activation().isGated() ? 3 : 2;
    }

    /** Forward expert-GEMM FLOPs: \( 2 \cdot \mathit{kept} \cdot d \cdot h \cdot g \). */
    public static double forwardFlops(MoeConfig config, long keptAssignments) {
        return 2.0 * keptAssignments * config.modelDim() * config.hiddenDim() * gemmsPerAssignment(config);
    }

    /** Forward + backward expert-GEMM FLOPs: 3 times {@link #forwardFlops}. */
    public static double forwardBackwardFlops(MoeConfig config, long keptAssignments) {
        return 3 * forwardFlops(config, keptAssignments);
    }

    /** The router GEMM's FLOPs \( 2 T d E \) (not part of the expert count). */
    public static double routerFlops(MoeConfig config, int tokens) {
        return 2.0 * tokens * config.modelDim() * config.experts();
    }

    /** The benchmark weights of a configuration ({@link MoeWeights#random} with {@link #WEIGHT_SEED}). */
    public static MoeWeights weights(Shape s) {
        return MoeWeights.random(s.config(), WEIGHT_SEED);
    }

    /** The benchmark input: [T, d] of standard normal values from {@link #INPUT_SEED}. */
    public static Tensor input(Shape s) {
        return filled(s.tokens(), s.modelDim(), INPUT_SEED);
    }

    /** The output gradient of backward: [T, d] ones, i.e. the loss sum(output) + the weighted aux losses. */
    public static Tensor outputGradient(Shape s) {
        float[] ones = new float[s.tokens() * s.modelDim()];
        java.util.Arrays.fill(ones, 1f);
        return Tensor.of(ones, s.tokens(), s.modelDim());
    }

    /** The options of a forward-only call: inference. */
    public static ForwardOptions inference() {
        return ForwardOptions.inference();
    }

    /** The options of the forward call that precedes backward: training (router noise where the preset has it). */
    public static ForwardOptions training() {
        return ForwardOptions.training(TRAINING_SEED, 0);
    }

    private static Tensor filled(int rows, int cols, long seed) {
        Random rng = new Random(seed);
        float[] v = new float[rows * cols];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) rng.nextGaussian();
        }
        return Tensor.of(v, rows, cols);
    }
}

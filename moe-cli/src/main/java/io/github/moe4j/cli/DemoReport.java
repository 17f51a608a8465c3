package io.github.moe4j.cli;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.CapacityBase;
import io.github.moe4j.api.ExpertChoiceRouterConfig;
import io.github.moe4j.api.GateNormalization;
import io.github.moe4j.api.LossWeights;
import io.github.moe4j.api.Mode;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeLosses;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.RenormTiming;
import io.github.moe4j.api.Routing;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.io.PrintWriter;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * What {@code moe4j demo} prints about one forward pass, for someone meeting MoE for the first
 * time: the backend, the configuration with its capacity worked out, one routing row per token,
 * each expert's load against its capacity, and the losses. Plain ASCII, numbers in
 * {@link Locale#ROOT}, so the same run prints the same text everywhere.
 *
 * @param preset               the preset the configuration came from
 * @param presetCapacityFactor the preset's own capacity factor, NaN if it has none
 * @param config               the configuration that ran
 * @param backend              the backend's name
 * @param device               the device the backend ran on
 * @param mode                 inference or training
 * @param seed                 the seed of the weights, the input and the noise
 * @param output               [T, d] the layer's output
 * @param routing              the routing decision
 * @param losses               the auxiliary losses
 */
record DemoReport(DemoPreset preset, double presetCapacityFactor, MoeConfig config, String backend, String device,
                  Mode mode, long seed, Tensor output, Routing routing, MoeLosses losses) {
    // T = tokens, d = model dim, h = hidden dim, E = experts, k = experts per token, C = capacity per expert

    /** Bars of the expert load table are at most this many characters. */
    private static final int BAR_WIDTH = 40;

    /** Prints the whole report. */
    void print(PrintWriter out) {
        printConfiguration(out);
        printRouting(out);
        printLoad(out);
        printLosses(out);
        out.flush();
    }

    // ---------------------------------------------------------------------------------------------
    // Configuration

    private void printConfiguration(PrintWriter out) {
        out.println("moe4j demo: one forward pass of a sparse Mixture-of-Experts layer on random tokens.");
        out.println("A router sends each token to a few of the E experts. An expert takes at most C assignments");
        out.println("(its capacity); the rest are dropped. A token's output is the gate-weighted sum of its kept experts.");
        out.println();
        line(out, "Backend", backend + " on " + device);
        line(out, "Preset", preset + " -- " + preset.summary());
        line(out, "", "mirrors " + preset.mirrors());
        String k = routing.choicesPerToken() == config.experts() && config.router() instanceof ExpertChoiceRouterConfig
                ? "" : ", k = " + config.topK() + " per token";
        line(out, "Sizes", "T = " + routing.tokens() + " tokens, d = " + config.modelDim() + " (model dim), h = "
                + config.hiddenDim() + " (expert hidden dim), E = " + config.experts() + " experts" + k);
        line(out, "Experts", config.activation() + ", f(x) = " + expertFormula(config.activation())
                + (config.expertBias() ? ", with biases" : ""));
        line(out, "Router", routerDescription());
        line(out, "Capacity", capacityDescription());
        if (config.capacity() instanceof Capacity.Factor f) {
            String fromPreset = Double.isNaN(presetCapacityFactor) || presetCapacityFactor == f.factor()
                    ? "the preset's" : "the preset's is " + presetCapacityFactor;
            line(out, "", "cf = " + f.factor() + " (" + fromPreset + "; set it with --capacity-factor)");
        }
        if (routing.capacity() != Routing.UNLIMITED && !(config.router() instanceof ExpertChoiceRouterConfig)) {
            line(out, "Priority", config.priority() + ": " + priorityDescription());
        }
        line(out, "Mode", modeDescription());
        out.println();
    }

    private static void line(PrintWriter out, String label, String text) {
        out.printf(Locale.ROOT, "%-10s%s%n", label, text);
    }

    private static String expertFormula(Activation a) {
        String phi = switch (a) {
            case RELU -> "relu";
            case GELU, GEGLU -> "gelu";
            case GELU_TANH, GEGLU_TANH -> "gelu_tanh";
            case SILU, SWIGLU -> "silu";
            default -> a.name().toLowerCase(Locale.ROOT);
        };
        return a.isGated() ? "W_out (" + phi + "(W_in x) * W_gate x)" : "W_out " + phi + "(W_in x)";
    }

    private String routerDescription() {
        if (config.router() instanceof TokenChoiceRouterConfig tc) {
            String timing = config.capacity() instanceof Capacity.Dropless ? ""
                    : tc.renormTiming() == RenormTiming.BEFORE_CAPACITY ? ", before capacity" : ", over the kept ones after capacity";
            String gates = tc.gates() == GateNormalization.NONE
                    ? "gate = softmax probability p"
                    : "gates = softmax over the chosen " + tc.k() + timing;
            String jitter = tc.jitter() > 0 ? "; training multiplies the router's input by U[1-eps, 1+eps], eps = " + tc.jitter() : "";
            return "token choice: top-" + tc.k() + " of the logits z = x W_r; " + gates + jitter;
        }
        if (config.router() instanceof NoisyTopKRouterConfig n) {
            String noise = n.noise() == NoisyTopKRouterConfig.Noise.LEARNED
                    ? "H = x W_g + eps * (softplus(x W_noise) + " + n.noiseEpsilon() + "), eps ~ N(0, 1) in training only"
                    : "H = x W_g (no noise)";
            return "noisy top-k: top-" + n.k() + " of " + noise + "; gates = softmax over the chosen " + n.k();
        }
        return "expert choice: each expert takes the C tokens with the largest s = softmax(x W_r); gate = s";
    }

    private String capacityDescription() {
        int tokens = routing.tokens() / routing.groups();
        int c = routing.capacity();
        Capacity capacity = config.capacity();
        if (capacity instanceof Capacity.Dropless || c == Routing.UNLIMITED) {
            return "unlimited (dropless): nothing is dropped";
        }
        String perExpert = config.router() instanceof ExpertChoiceRouterConfig
                ? (c == 1 ? " token" : " tokens") + " per expert (each expert takes exactly C)"
                : (c == 1 ? " assignment" : " assignments") + " per expert";
        if (capacity instanceof Capacity.Factor f) {
            boolean timesK = f.base() == CapacityBase.ASSIGNMENTS;
            String round = switch (f.rounding()) {
                case CEIL -> "ceil";
                case FLOOR -> "floor";
                case ROUND_HALF_EVEN -> "round";
            };
            String symbolic = round + "(cf * " + (timesK ? "k * " : "") + "T / E)";
            String numeric = round + "(" + f.factor() + " * " + (timesK ? Math.max(1, config.topK()) + " * " : "")
                    + tokens + " / " + config.experts() + ")";
            return "C = min(T, max(" + f.minCapacity() + ", " + symbolic + ")) = min(" + tokens + ", max("
                    + f.minCapacity() + ", " + numeric + ")) = " + c + perExpert;
        }
        if (capacity instanceof Capacity.Fixed f) {
            return "C = min(T, " + f.perExpert() + ") = " + c + perExpert;
        }
        return "C = " + c + perExpert;
    }

    private String priorityDescription() {
        return switch (config.priority()) {
            case RANK_MAJOR -> "every token's first choice, in token order, before any second choice";
            case TOKEN_MAJOR -> "token by token, each token's choices best first";
            case BATCH_PRIORITIZED -> "by rank, then by the token's top probability, largest first";
            case GATE_VALUE -> "per expert, largest gate first";
        };
    }

    private String modeDescription() {
        String made = "seed " + seed + " made the weights and the input";
        if (mode == Mode.INFERENCE) {
            return "inference: no noise; " + made;
        }
        String noise;
        if (config.router() instanceof TokenChoiceRouterConfig tc && tc.jitter() > 0) {
            noise = "router jitter drawn from seed " + seed + ", step 0";
        } else if (config.router() instanceof NoisyTopKRouterConfig n && n.noise() == NoisyTopKRouterConfig.Noise.LEARNED) {
            noise = "logit noise drawn from seed " + seed + ", step 0";
        } else {
            noise = "this preset draws no noise, so routing is as in inference";
        }
        return "training: " + noise + "; " + made;
    }

    // ---------------------------------------------------------------------------------------------
    // Routing table

    private void printRouting(PrintWriter out) {
        boolean expertChoice = config.router() instanceof ExpertChoiceRouterConfig;
        out.println(expertChoice
                ? "Routing: one row per token; the experts that took it, with the gate (its weight in the token's output)"
                : "Routing: one row per token; choice 0 is its best expert; gate = the expert's weight in the token's output;");
        out.println(expertChoice
                ? "and the slot (its place among the expert's C tokens). |y| = norm of the token's output."
                : "slot = its place in the expert's buffer; dropped = over capacity, adds nothing. |y| = norm of the output.");
        List<String> header = new ArrayList<>();
        header.add("token");
        if (expertChoice) {
            header.add("|y|");
            header.add("taken by");
        } else {
            for (int j = 0; j < routing.choicesPerToken(); j++) {
                header.add("choice " + j);
            }
            header.add("|y|");
        }
        List<List<String>> rows = new ArrayList<>();
        for (int t = 0; t < routing.tokens(); t++) {
            List<String> row = new ArrayList<>();
            row.add(Integer.toString(t));
            String norm = String.format(Locale.ROOT, "%.4f", outputNorm(t));
            if (expertChoice) {
                row.add(norm);
                row.add(takenBy(t));
            } else {
                for (int j = 0; j < routing.choicesPerToken(); j++) {
                    row.add(assignment(t, j));
                }
                row.add(norm);
            }
            rows.add(row);
        }
        printTable(out, header, rows);
        out.println();
    }

    /** One (token, choice) of a token-choice router: expert, gate and slot, or that it was dropped. */
    private String assignment(int t, int j) {
        int e = routing.expert(t, j);
        if (e < 0) {
            return "-";
        }
        if (!routing.isKept(t, j)) {
            return "e" + e + " dropped";
        }
        return String.format(Locale.ROOT, "e%d gate %.4f slot %d", e, routing.gate(t, j), routing.slot(t, j));
    }

    /** The experts that took token t under expert choice, or "nobody". */
    private String takenBy(int t) {
        StringBuilder sb = new StringBuilder();
        for (int j = 0; j < routing.choicesPerToken(); j++) {
            if (routing.expert(t, j) >= 0 && routing.isKept(t, j)) {
                sb.append(sb.length() == 0 ? "" : ", ").append(String.format(Locale.ROOT, "e%d gate %.4f slot %d",
                        routing.expert(t, j), routing.gate(t, j), routing.slot(t, j)));
            }
        }
        return sb.length() == 0 ? "nobody (output 0)" : sb.toString();
    }

    private double outputNorm(int t) {
        int d = output.dim(1);
        double s = 0;
        for (int c = 0; c < d; c++) {
            double v = output.get(t * d + c);
            s += v * v;
        }
        return Math.sqrt(s);
    }

    /** Left-aligned columns separated by two spaces, numbers right-aligned; the last column is not padded. */
    private static void printTable(PrintWriter out, List<String> header, List<List<String>> rows) {
        int[] width = new int[header.size()];
        boolean[] numeric = new boolean[header.size()];
        java.util.Arrays.fill(numeric, true);
        for (int c = 0; c < header.size(); c++) {
            width[c] = header.get(c).length();
        }
        for (List<String> row : rows) {
            for (int c = 0; c < row.size(); c++) {
                width[c] = Math.max(width[c], row.get(c).length());
                numeric[c] &= row.get(c).isEmpty() || row.get(c).matches("-?[0-9.]+(e-?[0-9]+)?");
            }
        }
        printRow(out, header, width, numeric);
        for (List<String> row : rows) {
            printRow(out, row, width, numeric);
        }
    }

    private static void printRow(PrintWriter out, List<String> cells, int[] width, boolean[] numeric) {
        StringBuilder sb = new StringBuilder();
        for (int c = 0; c < cells.size(); c++) {
            String cell = cells.get(c);
            String pad = " ".repeat(width[c] - cell.length());
            boolean last = c == cells.size() - 1;
            sb.append(c == 0 ? "" : "  ").append(numeric[c] ? pad + cell : last ? cell : cell + pad);
        }
        out.println(sb.toString().stripTrailing());
    }

    // ---------------------------------------------------------------------------------------------
    // Expert load

    private void printLoad(PrintWriter out) {
        int[] load = routing.load();
        int[] kept = routing.kept();
        int c = routing.capacity();
        boolean limited = c != Routing.UNLIMITED;
        int longest = limited ? c : 0;
        for (int e = 0; e < load.length; e++) {
            longest = Math.max(longest, load[e]);
        }
        int unit = Math.max(1, (longest + BAR_WIDTH - 1) / BAR_WIDTH);
        out.println("Expert load: load = assignments the router asked of the expert, kept = those within its capacity"
                + (limited ? " C = " + c : " (unlimited)") + ".");
        out.println("Bar: # kept" + (limited ? ", . free slot, | capacity C, x dropped" : "")
                + (unit > 1 ? " (one mark = " + unit + " assignments)" : "") + ".");
        List<String> header = List.of("expert", "load", "kept", "dropped", "");
        List<List<String>> rows = new ArrayList<>();
        for (int e = 0; e < load.length; e++) {
            rows.add(List.of("e" + e, Integer.toString(load[e]), Integer.toString(kept[e]),
                    Integer.toString(load[e] - kept[e]), bar(load[e], kept[e], c, unit)));
        }
        printTable(out, header, rows);
        int assignments = 0;
        for (int l : load) {
            assignments += l;
        }
        int untouched = 0;
        for (int t = 0; t < routing.tokens(); t++) {
            boolean any = false;
            for (int j = 0; j < routing.choicesPerToken(); j++) {
                any |= routing.isKept(t, j);
            }
            untouched += any ? 0 : 1;
        }
        if (config.router() instanceof ExpertChoiceRouterConfig) {
            out.printf(Locale.ROOT, "Dropped assignments: %d (expert choice fills every expert with exactly C tokens)%n", routing.dropped());
            out.printf(Locale.ROOT, "Tokens taken by no expert: %d of %d (their output is 0)%n", untouched, routing.tokens());
        } else {
            out.printf(Locale.ROOT, "Dropped assignments: %d of %d (a dropped assignment adds nothing to its token's output)%n",
                    routing.dropped(), assignments);
            out.printf(Locale.ROOT, "Tokens with every assignment dropped: %d of %d (their output is 0)%n", untouched, routing.tokens());
        }
        out.println();
    }

    private static String bar(int load, int kept, int capacity, int unit) {
        String keptMarks = "#".repeat(marks(kept, unit));
        String droppedMarks = "x".repeat(marks(load - kept, unit));
        if (capacity == Routing.UNLIMITED) {
            return keptMarks;
        }
        String free = ".".repeat(Math.max(0, marks(capacity, unit) - marks(kept, unit)));
        return keptMarks + free + "|" + droppedMarks;
    }

    /** n assignments in marks of {@code unit}, rounded to nearest, at least one mark if n > 0. */
    private static int marks(int n, int unit) {
        return n == 0 ? 0 : Math.max(1, (int) Math.round(n / (double) unit));
    }

    // ---------------------------------------------------------------------------------------------
    // Losses

    private void printLosses(PrintWriter out) {
        LossWeights w = config.losses();
        out.println("Losses: each value is unweighted; total = sum of coefficient * value (what training would add).");
        List<String> header = List.of("loss", "value", "coefficient", "weighted", "what it is");
        List<List<String>> rows = new ArrayList<>();
        boolean tokenChoice = config.router() instanceof TokenChoiceRouterConfig;
        boolean noisy = config.router() instanceof NoisyTopKRouterConfig;
        rows.add(lossRow("aux", losses.aux(), w.aux(), tokenChoice
                ? "load balancing: E * sum_i f_i P_i, f counts " + w.auxNormalization() : "load balancing (token-choice routers only)"));
        rows.add(lossRow("z", losses.z(), w.z(), "router z-loss: mean_t logsumexp(z_t)^2"));
        rows.add(lossRow("importance", losses.importance(), w.importance(), noisy
                ? "cv^2 of each expert's summed gates" : "importance (noisy top-k only)"));
        rows.add(lossRow("load", losses.load(), w.load(), noisy
                ? "cv^2 of each expert's expected load" : "load (noisy top-k only)"));
        rows.add(List.of("total", "", "", number(losses.total()), ""));
        printTable(out, header, rows);
    }

    private static List<String> lossRow(String name, double value, double coefficient, String meaning) {
        return List.of(name, number(value), plain(coefficient), number(coefficient * value), meaning);
    }

    /** Six significant digits, or "0". */
    private static String number(double v) {
        return v == 0 ? "0" : String.format(Locale.ROOT, "%.6g", v);
    }

    /** A coefficient or factor as written: 0.01, 1.25, 0. */
    private static String plain(double v) {
        return BigDecimal.valueOf(v).stripTrailingZeros().toPlainString();
    }
}

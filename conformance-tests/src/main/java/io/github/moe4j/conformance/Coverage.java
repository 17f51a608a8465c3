package io.github.moe4j.conformance;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.GateNormalization;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.PaddingPolicy;
import io.github.moe4j.api.SecondExpertPolicy;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

/**
 * What the suite ran, per backend: for every router × expert kind × capacity mode and each
 * direction, how many tries passed, were unsupported (by {@link io.github.moe4j.api.MoeBackend#supports},
 * with its reason) or failed. Printed after each contract container, so nothing is skipped quietly.
 * A failing property's count includes jqwik's shrinking tries.
 */
public final class Coverage {
    private Coverage() {}

    /** Forward or backward. */
    public enum Direction {
        /** A forward call was certified. */
        FORWARD,
        /** A backward call was certified. */
        BACKWARD
    }

    /** How a certified call ended. */
    public enum Outcome {
        /** Every check passed. */
        PASSED,
        /** The backend declared the configuration unsupported. */
        UNSUPPORTED,
        /** A check failed or the backend threw. */
        FAILED
    }

    /**
     * One cell of the matrix.
     *
     * @param router     the router family and its gate variant
     * @param activation the expert kind
     * @param capacity   dropless, factor or fixed
     */
    public record Cell(String router, Activation activation, String capacity) {}

    /** Counts [direction][outcome]. */
    private static final class Counts {
        final int[][] n = new int[Direction.values().length][Outcome.values().length];
    }

    private static final Map<String, Map<Cell, Counts>> MATRIX = new ConcurrentHashMap<>();
    private static final Map<String, Map<String, Counts>> FEATURES = new ConcurrentHashMap<>();
    private static final Map<String, Map<String, Integer>> REASONS = new ConcurrentHashMap<>();

    /** The matrix row of a configuration. */
    public static Cell cell(MoeConfig c) {
        return new Cell(routerLabel(c), c.activation(), capacityLabel(c.capacity()));
    }

    /** The router family with its gate variant, e.g. {@code token-choice RENORMALIZE/AFTER_CAPACITY}. */
    public static String routerLabel(MoeConfig c) {
        if (c.router() instanceof TokenChoiceRouterConfig t) {
            return "token-choice " + (t.gates() == GateNormalization.NONE ? "NONE" : "RENORMALIZE/" + t.renormTiming());
        }
        if (c.router() instanceof NoisyTopKRouterConfig n) {
            return "noisy-top-k " + n.noise();
        }
        return "expert-choice";
    }

    /** dropless, factor or fixed. */
    public static String capacityLabel(Capacity c) {
        return c instanceof Capacity.Dropless ? "dropless" : c instanceof Capacity.Factor ? "factor" : "fixed";
    }

    /** The features of a configuration that cut across the matrix. */
    static List<String> features(MoeConfig c) {
        List<String> f = new ArrayList<>();
        f.add("priority " + c.priority());
        if (c.router() instanceof TokenChoiceRouterConfig t) {
            if (t.secondExpertPolicy().kind() == SecondExpertPolicy.Kind.RANDOM) {
                f.add("second expert RANDOM");
            }
            if (t.jitter() > 0) {
                f.add("jitter " + t.jitterTarget());
            }
        }
        if (c.routerBias()) {
            f.add("router bias");
        }
        if (c.expertBias()) {
            f.add("expert bias");
        }
        if (c.padding() == PaddingPolicy.NOT_ROUTED) {
            f.add("padding NOT_ROUTED");
        }
        if (c.losses().aux() > 0) {
            f.add("loss aux " + c.losses().auxNormalization());
        }
        if (c.losses().z() > 0) {
            f.add("loss z");
        }
        if (c.losses().importance() > 0 || c.losses().load() > 0) {
            f.add("loss importance/load");
        }
        return f;
    }

    /** Records one certified call. */
    public static void record(String scope, MoeConfig c, Direction d, Outcome o, String reason) {
        MATRIX.computeIfAbsent(scope, s -> new ConcurrentHashMap<>()).computeIfAbsent(cell(c), x -> new Counts()).n[d.ordinal()][o.ordinal()]++;
        Map<String, Counts> features = FEATURES.computeIfAbsent(scope, s -> new ConcurrentHashMap<>());
        for (String f : features(c)) {
            features.computeIfAbsent(f, x -> new Counts()).n[d.ordinal()][o.ordinal()]++;
        }
        if (o == Outcome.UNSUPPORTED) {
            REASONS.computeIfAbsent(scope, s -> new ConcurrentHashMap<>()).merge(routerLabel(c) + ", " + c.activation() + ", "
                    + capacityLabel(c.capacity()) + ": " + reason, 1, Integer::sum);
        }
    }

    /** The total of one outcome in one direction, over the matrix of a scope. */
    public static int total(String scope, Direction d, Outcome o) {
        int n = 0;
        for (Counts c : MATRIX.getOrDefault(scope, Map.of()).values()) {
            n += c.n[d.ordinal()][o.ordinal()];
        }
        return n;
    }

    /** The scopes recorded so far. */
    public static List<String> scopes() {
        return new ArrayList<>(MATRIX.keySet());
    }

    /** Forgets a scope. */
    public static void clear(String scope) {
        MATRIX.remove(scope);
        FEATURES.remove(scope);
        REASONS.remove(scope);
    }

    /** The matrix of a scope as text: one row per router × expert kind × capacity mode that ran. */
    public static String report(String scope) {
        Map<Cell, Counts> m = new TreeMap<>(Comparator.comparing(Cell::router).thenComparing(Cell::activation).thenComparing(Cell::capacity));
        m.putAll(MATRIX.getOrDefault(scope, Map.of()));
        StringBuilder sb = new StringBuilder();
        sb.append("moe4j conformance coverage: ").append(scope).append('\n');
        String fmt = "  %-36s %-10s %-9s | forward %5s %5s %5s | backward %5s %5s %5s%n";
        sb.append(String.format(fmt, "router", "experts", "capacity", "pass", "unsup", "FAIL", "pass", "unsup", "FAIL"));
        for (Map.Entry<Cell, Counts> e : m.entrySet()) {
            int[][] n = e.getValue().n;
            sb.append(String.format(fmt, e.getKey().router(), e.getKey().activation(), e.getKey().capacity(),
                    n[0][0], n[0][1], n[0][2], n[1][0], n[1][1], n[1][2]));
        }
        List<String> missing = new ArrayList<>();
        for (String router : allRouters()) {
            for (Activation a : Activation.values()) {
                for (String cap : List.of("dropless", "factor", "fixed")) {
                    if (!(router.equals("expert-choice") && cap.equals("dropless")) && !m.containsKey(new Cell(router, a, cap))) {
                        missing.add(router + "/" + a + "/" + cap);
                    }
                }
            }
        }
        sb.append("  cells not exercised in this run: ").append(missing.isEmpty() ? "none" : missing.size() + " " + missing).append('\n');
        long noBackward = m.values().stream().filter(c -> c.n[Direction.BACKWARD.ordinal()][Outcome.PASSED.ordinal()]
                + c.n[Direction.BACKWARD.ordinal()][Outcome.UNSUPPORTED.ordinal()] + c.n[Direction.BACKWARD.ordinal()][Outcome.FAILED.ordinal()] == 0).count();
        sb.append("  cells exercised forward but never backward: ").append(noBackward).append(" of ").append(m.size()).append('\n');
        Map<String, Counts> features = new TreeMap<>(FEATURES.getOrDefault(scope, Map.of()));
        sb.append("  features:\n");
        for (Map.Entry<String, Counts> e : features.entrySet()) {
            int[][] n = e.getValue().n;
            sb.append(String.format("    %-34s forward %5d/%d/%d  backward %5d/%d/%d (pass/unsup/FAIL)%n", e.getKey(),
                    n[0][0], n[0][1], n[0][2], n[1][0], n[1][1], n[1][2]));
        }
        Map<String, Integer> reasons = new LinkedHashMap<>(REASONS.getOrDefault(scope, Map.of()));
        if (!reasons.isEmpty()) {
            sb.append("  unsupported, with the backend's reasons:\n");
            reasons.forEach((r, n) -> sb.append("    ").append(n).append(" x ").append(r).append('\n'));
        }
        return sb.toString();
    }

    private static List<String> allRouters() {
        return List.of("token-choice NONE", "token-choice RENORMALIZE/BEFORE_CAPACITY", "token-choice RENORMALIZE/AFTER_CAPACITY",
                "noisy-top-k LEARNED", "noisy-top-k NONE", "expert-choice");
    }
}

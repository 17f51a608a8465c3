package io.github.moe4j.bench;

import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeBackendProvider;
import io.github.moe4j.api.MoeBackends;
import io.github.moe4j.api.Support;
import io.github.moe4j.reference.ReferenceLayer;
import io.github.moe4j.reference.RouterOutput;
import io.github.moe4j.reference.RoutingPlan;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Which (backend, configuration, mode) combinations run here, with the reason for each that does
 * not, and each configuration's FLOP count: what {@code run-bench.sh} runs and what its summariser
 * divides by.
 *
 * <pre>
 * java -cp moe-bench/target/benchmarks.jar io.github.moe4j.bench.BenchPlan reference,opencl S,M,Switch fwd,fwdbwd
 * </pre>
 *
 * Prints one JSON object per line: {@code "kind":"config"} lines with the sizes, the kept
 * assignments of the reference's routing of the benchmark input, and the expert-GEMM GFLOP per call
 * ({@link BenchConfigs#forwardFlops}); {@code "kind":"case"} lines with {@code "run"} true or false
 * and the reason. Skipped cases are also printed to stderr as {@code SKIP ...}.
 */
public final class BenchPlan {
    private BenchPlan() {}

    /** Modes: forward only, or forward then backward. */
    static final List<String> MODES = List.of("fwd", "fwdbwd");

    /**
     * Why a backend cannot run a configuration in a mode, or null if it can.
     *
     * @param backend  the provider's name
     * @param config   the configuration's name ({@link BenchConfigs#names()})
     * @param backward whether backward is needed as well
     */
    public static String skipReason(String backend, String config, boolean backward) {
        BenchConfigs.Shape s = BenchConfigs.shape(config);
        MoeBackendProvider provider = null;
        List<String> names = new ArrayList<>();
        for (MoeBackendProvider p : MoeBackends.providers()) {
            names.add(p.name());
            if (p.name().equals(backend)) {
                provider = p;
            }
        }
        if (provider == null) {
            return "no backend named '" + backend + "' on the class path (found " + names + ")";
        }
        if (!provider.availability().available()) {
            return "backend '" + backend + "' is not available: " + provider.availability().reason();
        }
        try (MoeBackend b = provider.open()) {
            return reason(b.supports(s.config()), backward);
        } catch (RuntimeException e) {
            return "backend '" + backend + "' failed to open: " + e;
        }
    }

    /** The reason a {@link Support} gives for the mode, or null if the mode is supported. */
    static String reason(Support support, boolean backward) {
        if (!support.supported()) {
            return "unsupported configuration: " + support.reason();
        }
        if (backward && !support.backward()) {
            return "backward unsupported: " + support.reason();
        }
        return null;
    }

    /** The assignments the reference keeps when it routes the benchmark input of a configuration. */
    public static long keptAssignments(BenchConfigs.Shape s) {
        ReferenceLayer layer = new ReferenceLayer(s.config(), BenchConfigs.weights(s));
        double[] x = BenchConfigs.input(s).toDoubleArray();
        RouterOutput r = layer.router(x, s.tokens(), BenchConfigs.inference());
        RoutingPlan plan = layer.route(r, BenchConfigs.inference());
        return Arrays.stream(plan.kept()).asLongStream().sum();
    }

    /**
     * Prints the plan.
     *
     * @param args backends, configurations and modes, each comma-separated (defaults: every
     *             provider on the class path, every configuration, both modes)
     */
    public static void main(String[] args) {
        List<String> backends = args.length > 0 ? split(args[0]) : providerNames();
        List<String> configs = args.length > 1 ? split(args[1]) : BenchConfigs.names();
        List<String> modes = args.length > 2 ? split(args[2]) : MODES;
        for (String c : configs) {
            BenchConfigs.Shape s = BenchConfigs.shape(c);
            long kept = keptAssignments(s);
            System.out.println(String.format(Locale.ROOT,
                    "{\"kind\":\"config\",\"config\":\"%s\",\"T\":%d,\"d\":%d,\"h\":%d,\"E\":%d,\"k\":%d,\"activation\":\"%s\","
                            + "\"gemms\":%d,\"capacity\":%s,\"nominal_assignments\":%d,\"kept_assignments\":%d,"
                            + "\"fwd_gflop\":%.6f,\"fwdbwd_gflop\":%.6f,\"nominal_fwd_gflop\":%.6f,\"router_gflop\":%.6f}",
                    c, s.tokens(), s.modelDim(), s.hiddenDim(), s.experts(), s.topK(), s.config().activation(),
                    BenchConfigs.gemmsPerAssignment(s.config()), capacity(s),
                    s.nominalAssignments(), kept, BenchConfigs.forwardFlops(s.config(), kept) / 1e9,
                    BenchConfigs.forwardBackwardFlops(s.config(), kept) / 1e9, s.nominalForwardFlops() / 1e9,
                    BenchConfigs.routerFlops(s.config(), s.tokens()) / 1e9));
        }
        for (String b : backends) {
            for (String c : configs) {
                for (String m : modes) {
                    if (!MODES.contains(m)) {
                        throw new IllegalArgumentException("mode must be one of " + MODES + ", got " + m);
                    }
                    String why = skipReason(b, c, m.equals("fwdbwd"));
                    System.out.println("{\"kind\":\"case\",\"backend\":\"" + b + "\",\"config\":\"" + c + "\",\"mode\":\"" + m
                            + "\",\"run\":" + (why == null) + ",\"reason\":\"" + (why == null ? "" : json(why)) + "\"}");
                    if (why != null) {
                        System.err.println("SKIP " + b + " " + c + " " + m + ": " + why);
                    }
                }
            }
        }
    }

    /** C as JSON: a number, or null when nothing is dropped. */
    private static String capacity(BenchConfigs.Shape s) {
        int c = s.config().capacityPerExpert(s.tokens());
        return c == io.github.moe4j.api.Routing.UNLIMITED ? "null" : Integer.toString(c);
    }

    private static List<String> providerNames() {
        List<String> names = new ArrayList<>();
        MoeBackends.providers().forEach(p -> names.add(p.name()));
        return names;
    }

    private static List<String> split(String s) {
        List<String> out = new ArrayList<>();
        for (String p : s.split(",")) {
            if (!p.isBlank()) {
                out.add(p.trim());
            }
        }
        return out;
    }

    static String json(String s) {
        StringBuilder b = new StringBuilder();
        for (char ch : s.toCharArray()) {
            if (ch == '"' || ch == '\\') {
                b.append('\\').append(ch);
            } else if (ch < 0x20) {
                b.append(String.format(Locale.ROOT, "\\u%04x", (int) ch));
            } else {
                b.append(ch);
            }
        }
        return b.toString();
    }
}

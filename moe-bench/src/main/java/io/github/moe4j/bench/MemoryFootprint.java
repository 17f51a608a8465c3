package io.github.moe4j.bench;

import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeBackends;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeGradients;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.Tensor;
import java.lang.management.ManagementFactory;
import javax.management.JMException;
import javax.management.ObjectName;
import java.util.Locale;
import java.util.Set;

/**
 * How much memory a layer call of a backend needs, as an upper bound comparable with the PyTorch
 * peer's peak-RSS increase (the peer's {@code rss_increase_mb}: its weights, input, activations and
 * gradients over torch alone).
 *
 * <pre>
 * java -cp moe-bench/target/benchmarks.jar io.github.moe4j.bench.MemoryFootprint cpu M fwdbwd
 * </pre>
 *
 * Prints one JSON line with, in MB (10^6 bytes):
 * <ul>
 * <li>{@code retained_mb}: the live objects after {@value #WARM_UP_CALLS} calls (the total of a full collection's class
 *     histogram, the {@code GC.class_histogram} diagnostic command) over those before the layer was
 *     made, with the caller's {@code MoeWeights} dropped (a layer keeps what it needs of them), plus
 *     the input and (fwdbwd) the output gradient. It holds the layer with its weights and reused
 *     buffers;</li>
 * <li>{@code call_allocated_mb}: bytes allocated by every thread during one more call (the
 *     output, the gradients, anything transient);</li>
 * <li>{@code peak_bound_mb}: their sum. No call can have more live than the retained heap plus
 *     everything it allocates, so this bounds the peak from above.</li>
 * </ul>
 */
public final class MemoryFootprint {
    /**
     * Calls before measuring. With two, S's activation loops were not yet compiled by C2 when the
     * allocation was counted, and moe-cpu's Vector-API activation allocated its vectors as objects
     * (61 MB per S forward, against 1.2 MB once compiled).
     */
    static final int WARM_UP_CALLS = 10;

    private MemoryFootprint() {}

    /**
     * Measures one case.
     *
     * @param args backend, configuration ({@link BenchConfigs#names()}), mode ({@code fwd} or {@code fwdbwd})
     */
    public static void main(String[] args) {
        if (args.length != 3 || !BenchPlan.MODES.contains(args[2])) {
            throw new IllegalArgumentException("usage: MemoryFootprint BACKEND CONFIG fwd|fwdbwd, got " + String.join(" ", args));
        }
        String backendName = args[0];
        BenchConfigs.Shape s = BenchConfigs.shape(args[1]);
        boolean backward = args[2].equals("fwdbwd");
        try (MoeBackend backend = MoeBackends.open(backendName)) {
            Tensor input = BenchConfigs.input(s);
            Tensor dOutput = backward ? BenchConfigs.outputGradient(s) : null;
            long before = liveBytes();
            MoeLayer layer = backend.createLayer(s.config(), BenchConfigs.weights(s));
            for (int i = 0; i < WARM_UP_CALLS; i++) {
                call(layer, input, dOutput);
            }
            long retained = liveBytes() - before + input.size() * 4L + (dOutput == null ? 0 : dOutput.size() * 4L);
            long allocated = -allocatedByAllThreads();
            call(layer, input, dOutput);
            allocated += allocatedByAllThreads();
            layer.close();
            System.out.println(String.format(Locale.ROOT,
                    "{\"kind\":\"memory\",\"backend\":\"%s\",\"device\":\"%s\",\"config\":\"%s\",\"mode\":\"%s\","
                            + "\"retained_mb\":%.1f,\"call_allocated_mb\":%.1f,\"peak_bound_mb\":%.1f}",
                    backendName, BenchPlan.json(backend.device()), s.name(), args[2], retained / 1e6, allocated / 1e6,
                    (retained + allocated) / 1e6));
        }
    }

    private static void call(MoeLayer layer, Tensor input, Tensor dOutput) {
        if (dOutput == null) {
            try (MoeForward f = layer.forward(input, BenchConfigs.inference())) {
                consume(f.output());
            }
        } else {
            try (MoeForward f = layer.forward(input, BenchConfigs.training())) {
                MoeGradients g = layer.backward(f, dOutput, Set.of());
                consume(g.input());
            }
        }
    }

    private static volatile Object sink;

    private static void consume(Object o) {
        sink = o;
        sink = null;
    }

    /** The bytes of all live objects: the "Total" line of a full collection's class histogram. */
    static long liveBytes() {
        try {
            Object histogram = ManagementFactory.getPlatformMBeanServer().invoke(
                    new ObjectName("com.sun.management:type=DiagnosticCommand"), "gcClassHistogram",
                    new Object[] {new String[0]}, new String[] {String[].class.getName()});
            for (String line : histogram.toString().split("\\n")) {
                String[] f = line.trim().split("\\s+");
                if (f.length == 3 && f[0].equals("Total")) {
                    return Long.parseLong(f[2]);
                }
            }
            throw new IllegalStateException("no Total line in the class histogram");
        } catch (JMException e) {
            throw new IllegalStateException("the GC.class_histogram diagnostic command failed", e);
        }
    }

    /** Bytes allocated so far by the threads alive now (the backend's pool threads included). */
    private static long allocatedByAllThreads() {
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long[] ids = Thread.getAllStackTraces().keySet().stream().mapToLong(Thread::getId).toArray();
        long sum = 0;
        for (long b : threads.getThreadAllocatedBytes(ids)) {
            sum += Math.max(b, 0);
        }
        return sum;
    }
}

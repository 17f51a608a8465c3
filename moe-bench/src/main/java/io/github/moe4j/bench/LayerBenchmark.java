package io.github.moe4j.bench;

import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeBackends;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.cpu.CpuBackend;
import io.github.moe4j.cpu.CpuBackendProvider;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.infra.Blackhole;

/**
 * One whole layer call per operation, per backend and configuration: {@link #forward} (inference)
 * and {@link #forwardBackward} (a training-mode forward, then backward of sum(output) plus the
 * weighted auxiliary losses, gradients for the input and every parameter).
 *
 * <p>The score is milliseconds per call; tokens/s is T / that, expert GFLOP/s is
 * {@link BenchConfigs#forwardFlops} (3x for forward + backward) / that. A backend is a name
 * ({@code -p backend=reference,opencl,cpu}); a backend that is missing, unavailable, or does not
 * support the configuration (or its backward) fails the trial's setup with the reason, printed as
 * {@code SKIP ...}; {@code run-bench.sh} asks {@link BenchPlan} first and runs only what is supported.
 *
 * <p>{@link #threads} sets the pool of a backend that has one ({@code cpu}, through its system
 * property {@value CpuBackend#THREADS_PROPERTY}); the reference always runs on the calling thread and
 * PoCL decides OpenCL's threads itself, so for them only 0 (the backend's own choice) is accepted.
 *
 * <p>The defaults (1 warm-up and 3 measured iterations of 1 s, 1 fork) suit a slow backend: an
 * iteration always completes at least one call, so the reference on M or L measures 3 calls of
 * tens of seconds each. Give more with {@code -wi}, {@code -i}, {@code -r}, {@code -f}.
 *
 * <p>The fork adds {@code jdk.incubator.vector}, so moe-cpu's activation runs on the Vector API (its
 * results are bit-identical to the scalar loops'). To measure the scalar loops, pass
 * {@code -jvmArgsAppend "-Xms2g -Xmx12g --add-modules jdk.incubator.vector -Dmoe4j.cpu.simd=false"}:
 * a {@code -jvmArgsAppend} on the command line replaces this annotation's, it does not add to it.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xms2g", "-Xmx12g", "--add-modules", "jdk.incubator.vector"})
public class LayerBenchmark {

    /** The backend's provider name. */
    @Param({"reference", "opencl"})
    public String backend;

    /** The configuration's name ({@link BenchConfigs#names()}). */
    @Param({"S", "W", "Switch", "M", "L"})
    public String config;

    /** Threads of the backend's pool; 0 leaves the backend's default. */
    @Param({"0"})
    public int threads;

    private MoeBackend opened;
    private MoeLayer layer;
    private Tensor input;
    private Tensor dOutput;

    /** Opens the backend and builds the layer, or fails with the reason it cannot run. */
    @Setup(Level.Trial)
    public void setUp(BenchmarkParams params) {
        boolean backward = params.getBenchmark().endsWith("forwardBackward");
        String why = BenchPlan.skipReason(backend, config, backward);
        if (why == null && threads != 0 && !backend.equals(CpuBackendProvider.NAME)) {
            why = "threads = " + threads + " but backend '" + backend + "' has no thread pool to size (use threads = 0)";
        }
        if (why != null) {
            String msg = "SKIP " + backend + " " + config + (backward ? " fwdbwd" : " fwd") + ": " + why;
            System.out.println(msg);
            throw new IllegalStateException(msg);
        }
        BenchConfigs.Shape s = BenchConfigs.shape(config);
        if (threads != 0) {
            System.setProperty(CpuBackend.THREADS_PROPERTY, Integer.toString(threads));
        }
        opened = MoeBackends.open(backend);
        System.out.println("backend " + backend + ": " + opened.device());
        layer = opened.createLayer(s.config(), BenchConfigs.weights(s));
        input = BenchConfigs.input(s);
        dOutput = BenchConfigs.outputGradient(s);
    }

    /** Closes the layer and the backend. */
    @TearDown(Level.Trial)
    public void tearDown() {
        if (layer != null) {
            layer.close();
        }
        if (opened != null) {
            opened.close();
        }
    }

    /** One inference forward call. */
    @Benchmark
    public void forward(Blackhole bh) {
        try (MoeForward f = layer.forward(input, BenchConfigs.inference())) {
            bh.consume(f.output());
        }
    }

    /** One training forward call and its backward. */
    @Benchmark
    public void forwardBackward(Blackhole bh) {
        try (MoeForward f = layer.forward(input, BenchConfigs.training())) {
            bh.consume(layer.backward(f, dOutput, Set.of()));
        }
    }
}

package io.github.moe4j.bench;

import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.cpu.CpuBackend;
import io.github.moe4j.cpu.CpuStages;
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

/**
 * moe-cpu's inference forward stage by stage ({@link CpuStages}): router, dispatch, experts and
 * combine, each run alone on what the stages before it produced, and the whole {@code forward} in
 * the same fork for comparison, so a slow stage is visible. Milliseconds per call. Run it with
 * {@code OPENBLAS_NUM_THREADS=1} (the pool runs one single-threaded GEMM per thread); the fork adds
 * {@code jdk.incubator.vector}, as {@link LayerBenchmark}'s does.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xms2g", "-Xmx12g", "--add-modules", "jdk.incubator.vector"})
public class CpuStagesBenchmark {

    /** The configuration's name ({@link BenchConfigs#names()}). */
    @Param({"S", "M", "W", "Switch"})
    public String config;

    /** Threads of the backend's pool. */
    @Param({"1", "2"})
    public int threads;

    private CpuBackend backend;
    private MoeLayer layer;
    private Tensor input;
    private CpuStages stages;

    /** Opens the backend, makes the layer and runs every stage once. */
    @Setup(Level.Trial)
    public void setUp() {
        BenchConfigs.Shape s = BenchConfigs.shape(config);
        backend = new CpuBackend(threads);
        System.out.println("backend cpu: " + backend.device());
        layer = backend.createLayer(s.config(), BenchConfigs.weights(s));
        input = BenchConfigs.input(s);
        stages = new CpuStages(layer, input, BenchConfigs.inference());
    }

    /** Releases the layer and the pool. */
    @TearDown(Level.Trial)
    public void tearDown() {
        layer.close();
        backend.close();
    }

    /** Stage 1: logits by SGEMM, softmax, top-k, capacity slots, gates, losses. */
    @Benchmark
    public void router() {
        stages.router();
    }

    /** Stage 2: grouping by expert and gathering the rows' inputs. */
    @Benchmark
    public void dispatch() {
        stages.dispatch();
    }

    /** Stage 3: the expert GEMMs and the activation. */
    @Benchmark
    public void experts() {
        stages.experts();
    }

    /** Stage 4: each token's gate-weighted sum of its kept rows. */
    @Benchmark
    public Tensor combine() {
        return stages.combine();
    }

    /** The whole inference forward through {@link MoeLayer#forward}, for comparison with the stages' sum. */
    @Benchmark
    public Tensor forward() {
        try (MoeForward f = layer.forward(input, BenchConfigs.inference())) {
            return f.output();
        }
    }
}

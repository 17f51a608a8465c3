package io.github.moe4j.bench;

import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeBackends;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.opencl.OpenClBackendProvider;
import io.github.moe4j.opencl.OpenClStages;
import io.github.moe4j.opencl.OpenClStages.Stage;
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
 * The OpenCL backend's inference forward cut after each stage ({@link OpenClStages}): through the
 * router, the dispatch, the experts and the combine, and the whole {@code forward}, in one fork. The
 * forward is one launch of many phases that each read what the phases before left on the device, so
 * a stage cannot run alone: its time is the difference between running through it and through the
 * stage before ({@code summarize.py} prints both). Milliseconds per call.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xms2g", "-Xmx12g"})
public class OpenClStagesBenchmark {

    /** The configuration's name ({@link BenchConfigs#names()}). */
    @Param({"S", "Switch"})
    public String config;

    private MoeBackend backend;
    private MoeLayer layer;
    private Tensor input;
    private OpenClStages stages;

    /** Opens the backend (or fails the trial with the reason it is unavailable) and makes the layer. */
    @Setup(Level.Trial)
    public void setUp() {
        BenchConfigs.Shape s = BenchConfigs.shape(config);
        backend = MoeBackends.open(OpenClBackendProvider.NAME);
        System.out.println("backend opencl: " + backend.device());
        layer = backend.createLayer(s.config(), BenchConfigs.weights(s));
        input = BenchConfigs.input(s);
        stages = new OpenClStages(layer, input, BenchConfigs.inference());
    }

    /** Releases the layer and the device. */
    @TearDown(Level.Trial)
    public void tearDown() {
        layer.close();
        backend.close();
    }

    /** Upload, then logits, softmax, top-k, capacity positions. */
    @Benchmark
    public void throughRouter() {
        stages.runThrough(Stage.ROUTER);
    }

    /** ... then counting, grouping by expert, gathering the rows. */
    @Benchmark
    public void throughDispatch() {
        stages.runThrough(Stage.DISPATCH);
    }

    /** ... then the expert GEMMs and the activation. */
    @Benchmark
    public void throughExperts() {
        stages.runThrough(Stage.EXPERTS);
    }

    /** ... then the combine. */
    @Benchmark
    public void throughCombine() {
        stages.runThrough(Stage.COMBINE);
    }

    /** The whole inference forward: all of the above, the losses, and reading the results back. */
    @Benchmark
    public Tensor forward() {
        try (MoeForward f = layer.forward(input, BenchConfigs.inference())) {
            return f.output();
        }
    }
}

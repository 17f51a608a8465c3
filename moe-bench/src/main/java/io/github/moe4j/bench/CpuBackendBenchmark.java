package io.github.moe4j.bench;

import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeGradients;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Presets;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.cpu.CpuBackend;
import java.util.Set;
import java.util.SplittableRandom;
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
 * moe-cpu on configuration M (T = 2048, d = 512, h = 2048, E = 8, k = 2, Mixtral-style SwiGLU,
 * dropless): one layer call, forward and forward + backward. Tokens/s = 2048 / the time per call.
 * The backend's device line (threads, BLAS) is printed at setup; run with
 * {@code OPENBLAS_NUM_THREADS=1} so that OpenBLAS does not start threads of its own beside the pool.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx4g", "--add-modules", "jdk.incubator.vector"})
public class CpuBackendBenchmark {
    private static final int TOKENS = 2048;

    /** Threads of the backend's pool. */
    @Param({"2"})
    public int threads;

    private CpuBackend backend;
    private MoeLayer layer;
    private Tensor input;
    private Tensor dOutput;

    /** Opens the backend and makes the layer, its weights, the input and the output gradient. */
    @Setup(Level.Trial)
    public void setUp() {
        MoeConfig config = Presets.mixtral().modelDim(512).hiddenDim(2048).experts(8).build();
        backend = new CpuBackend(threads);
        System.out.println("moe-cpu: " + backend.device());
        layer = backend.createLayer(config, MoeWeights.random(config, 7));
        input = random(new SplittableRandom(1), TOKENS, config.modelDim());
        dOutput = random(new SplittableRandom(2), TOKENS, config.modelDim());
    }

    /** Releases the layer and the pool. */
    @TearDown(Level.Trial)
    public void tearDown() {
        layer.close();
        backend.close();
    }

    /** One forward call (inference). */
    @Benchmark
    public Tensor forward() {
        try (MoeForward f = layer.forward(input, ForwardOptions.inference())) {
            return f.output();
        }
    }

    /** One forward call followed by backward, every parameter trained. */
    @Benchmark
    public MoeGradients forwardBackward() {
        try (MoeForward f = layer.forward(input, ForwardOptions.inference())) {
            return layer.backward(f, dOutput, Set.of());
        }
    }

    private static Tensor random(SplittableRandom rnd, int rows, int cols) {
        float[] v = new float[rows * cols];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (rnd.nextDouble() * 2 - 1);
        }
        return Tensor.of(v, rows, cols);
    }
}

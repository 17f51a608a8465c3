package io.github.moe4j.bench;

import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.reference.ReferenceForward;
import io.github.moe4j.reference.ReferenceLayer;
import io.github.moe4j.reference.RouterOutput;
import io.github.moe4j.reference.RoutingPlan;
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
import org.openjdk.jmh.annotations.Warmup;

/**
 * The reference's forward stages one at a time, through its public stage API
 * ({@link ReferenceLayer#router}, {@link ReferenceLayer#route}, {@link ReferenceLayer#dispatch},
 * {@link ReferenceLayer#experts}, {@link ReferenceLayer#combine}, {@link ReferenceLayer#losses}),
 * plus its whole backward on a cached training forward. Each stage's input is computed once in
 * setup, so a stage's time is its own. Milliseconds per call.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xms2g", "-Xmx12g"})
public class ReferenceStagesBenchmark {

    /** The configuration's name ({@link BenchConfigs#names()}). */
    @Param({"S", "E8", "E64"})
    public String config;

    private ReferenceLayer layer;
    private double[] x;
    private int tokens;
    private ForwardOptions options;
    private RouterOutput routerOutput;
    private RoutingPlan plan;
    private ReferenceLayer.Dispatch dispatch;
    private ReferenceLayer.ExpertOutputs outputs;
    private ReferenceForward trainingForward;
    private double[] dY;

    /** Computes every stage's input once. */
    @Setup(Level.Trial)
    public void setUp() {
        BenchConfigs.Shape s = BenchConfigs.shape(config);
        layer = new ReferenceLayer(s.config(), BenchConfigs.weights(s));
        x = BenchConfigs.input(s).toDoubleArray();
        tokens = s.tokens();
        options = BenchConfigs.inference();
        routerOutput = layer.router(x, tokens, options);
        plan = layer.route(routerOutput, options);
        dispatch = layer.dispatch(routerOutput.expertInput(), plan);
        outputs = layer.experts(dispatch);
        trainingForward = layer.forward(x, tokens, BenchConfigs.training());
        dY = BenchConfigs.outputGradient(s).toDoubleArray();
    }

    /** Stage 1: router logits and softmax. */
    @Benchmark
    public RouterOutput router() {
        return layer.router(x, tokens, options);
    }

    /** Stage 2: top-k selection, capacity slots and gates. */
    @Benchmark
    public RoutingPlan route() {
        return layer.route(routerOutput, options);
    }

    /** Stage 3: gathering each expert's rows. */
    @Benchmark
    public ReferenceLayer.Dispatch dispatch() {
        return layer.dispatch(routerOutput.expertInput(), plan);
    }

    /** Stage 4: every expert network on its rows. */
    @Benchmark
    public ReferenceLayer.ExpertOutputs experts() {
        return layer.experts(dispatch);
    }

    /** Stage 5: the gate-weighted sum per token. */
    @Benchmark
    public double[] combine() {
        return layer.combine(outputs, dispatch, plan);
    }

    /** Stage 6: the auxiliary losses. */
    @Benchmark
    public Object losses() {
        return layer.losses(routerOutput, plan, options, null);
    }

    /** The whole backward of a cached training forward. */
    @Benchmark
    public Object backward() {
        return layer.backward(trainingForward, dY, Set.of());
    }
}

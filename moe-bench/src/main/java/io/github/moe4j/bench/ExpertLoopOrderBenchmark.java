package io.github.moe4j.bench;

import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The evidence behind the reference's loop order: one SwiGLU expert applied row by row in double,
 * as {@code ExpertNetwork.forward} does, with the loop order it had first ({@link #referenceOrder}:
 * the inner loop walks a column of W_in, W_gate and W_out, stride h or d) and with the loops swapped
 * ({@link #rowOrder}: the inner loop walks a row, stride 1; what the reference does now). Both add
 * each output element's terms in the same order (bias, then increasing inner index), so they give
 * bit-identical results ({@link #check} fails the trial otherwise). Milliseconds per expert call
 * on {@code rows} rows.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(1)
public class ExpertLoopOrderBenchmark {

    /** d, the model width. */
    @Param("256")
    public int d;

    /** h, the hidden width. */
    @Param("1024")
    public int h;

    /** Rows (tokens) given to the expert. */
    @Param("128")
    public int rows;

    private double[] x;
    private double[] wIn;
    private double[] wGate;
    private double[] wOut;

    /** Random weights and input; checks that both orders agree bit for bit. */
    @Setup
    public void setUp() {
        Random rng = new Random(1);
        x = fill(rng, rows * d);
        wIn = fill(rng, d * h);
        wGate = fill(rng, d * h);
        wOut = fill(rng, h * d);
        check();
    }

    private static double[] fill(Random rng, int n) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = rng.nextGaussian() * 0.05;
        }
        return v;
    }

    /** Fails unless both loop orders give the same bits. */
    void check() {
        double[] a = referenceOrder();
        double[] b = rowOrder();
        for (int i = 0; i < a.length; i++) {
            if (Double.doubleToRawLongBits(a[i]) != Double.doubleToRawLongBits(b[i])) {
                throw new IllegalStateException("loop orders differ at " + i + ": " + a[i] + " vs " + b[i]);
            }
        }
    }

    private static double silu(double v) {
        return v / (1 + Math.exp(-v));
    }

    /** The reference's order: for each output element, a dot product down a weight column. */
    @Benchmark
    public double[] referenceOrder() {
        double[] y = new double[rows * d];
        double[] a = new double[h];
        double[] b = new double[h];
        double[] hidden = new double[h];
        for (int r = 0; r < rows; r++) {
            int xo = r * d;
            for (int i = 0; i < h; i++) {
                double ai = 0;
                double bi = 0;
                for (int j = 0; j < d; j++) {
                    ai += x[xo + j] * wIn[j * h + i];
                    bi += x[xo + j] * wGate[j * h + i];
                }
                a[i] = ai;
                b[i] = bi;
            }
            for (int i = 0; i < h; i++) {
                hidden[i] = silu(a[i]) * b[i];
            }
            for (int j = 0; j < d; j++) {
                double yj = 0;
                for (int i = 0; i < h; i++) {
                    yj += hidden[i] * wOut[i * d + j];
                }
                y[xo + j] = yj;
            }
        }
        return y;
    }

    /** Swapped loops: each input element scales a weight row into the accumulators (stride 1). */
    @Benchmark
    public double[] rowOrder() {
        double[] y = new double[rows * d];
        double[] a = new double[h];
        double[] b = new double[h];
        double[] hidden = new double[h];
        for (int r = 0; r < rows; r++) {
            int xo = r * d;
            java.util.Arrays.fill(a, 0);
            java.util.Arrays.fill(b, 0);
            for (int j = 0; j < d; j++) {
                double xj = x[xo + j];
                int wo = j * h;
                for (int i = 0; i < h; i++) {
                    a[i] += xj * wIn[wo + i];
                    b[i] += xj * wGate[wo + i];
                }
            }
            for (int i = 0; i < h; i++) {
                hidden[i] = silu(a[i]) * b[i];
            }
            for (int i = 0; i < h; i++) {
                double hi = hidden[i];
                int wo = i * d;
                for (int j = 0; j < d; j++) {
                    y[xo + j] += hi * wOut[wo + j];
                }
            }
        }
        return y;
    }
}

package io.github.moe4j.reference;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.AuxNormalization;
import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.Freeze;
import io.github.moe4j.api.GateNormalization;
import io.github.moe4j.api.LossWeights;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.util.EnumSet;
import java.util.SplittableRandom;

/**
 * A one-layer MoE learns a synthetic task with the reference backward and plain SGD.
 *
 * <p>The task: inputs come from {@value #CLUSTERS} Gaussian clusters in d = {@value #D} (centres
 * at distance about 3 from the origin, spread 0.3), and each cluster has its own target, a random
 * linear map \( t = A_c x \). The layer: E = {@value #EXPERTS} GELU experts with h = {@value #H},
 * Switch-style top-1 routing with gates p (NONE, so the router learns from the task through the
 * gate value), dropless, a router bias. The loss: \( \mathrm{MSE} = \tfrac1T \sum_t \lVert y_t - t_t \rVert^2 \)
 * (so \( dY = 2(y - t)/T \)) plus α times the Switch load-balancing loss (TOP1 convention).
 *
 * <p>The router bias starts "unlucky", +{@value #UNLUCKY_BIAS} on expert 0, so that every token
 * starts on expert 0: without the aux loss nothing pulls tokens away from it (the other experts,
 * never chosen, never train), which is the collapse the aux loss exists to prevent.
 */
public final class TrainingExample {
    static final int D = 8;
    static final int H = 16;
    static final int EXPERTS = 4;
    static final int CLUSTERS = 4;
    static final double UNLUCKY_BIAS = 3;
    static final int BATCH = 64;
    static final int EVAL = 400;
    /** SGD steps of the example. */
    static final int STEPS = 2000;
    /** SGD step size of the example. */
    static final double LEARNING_RATE = 0.05;
    /** α of the example: large next to Switch's 0.01 because the batch is small and the MSE starts near 10. */
    static final double ALPHA = 1;
    /** The seed of the example. */
    static final long SEED = 2024;

    private TrainingExample() {}

    /**
     * What a run measured on a fixed held-out set of {@value #EVAL} tokens (inference mode).
     *
     * @param initialMse  MSE before training
     * @param finalMse    MSE after training
     * @param majority    per cluster, the expert most of its tokens are routed to
     * @param purity      per cluster, the fraction of its tokens routed to that expert
     * @param load        per expert, the held-out tokens routed to it
     */
    record Result(double initialMse, double finalMse, int[] majority, double[] purity, int[] load) {
        /** Busiest over least busy expert's load (infinite if an expert gets no token). */
        double loadRatio() {
            int max = 0;
            int min = Integer.MAX_VALUE;
            for (int l : load) {
                max = Math.max(max, l);
                min = Math.min(min, l);
            }
            return min == 0 ? Double.POSITIVE_INFINITY : (double) max / min;
        }

        /** Whether the clusters' majority experts are all different. */
        boolean clustersOnDistinctExperts() {
            return java.util.Arrays.stream(majority).distinct().count() == majority.length;
        }

        /** The smallest purity over the clusters. */
        double minPurity() {
            return java.util.Arrays.stream(purity).min().orElse(0);
        }

        @Override
        public String toString() {
            StringBuilder sb = new StringBuilder();
            sb.append(String.format("MSE %.4f -> %.4f (%.1f%% of start)%n", initialMse, finalMse, 100 * finalMse / initialMse));
            for (int c = 0; c < majority.length; c++) {
                sb.append(String.format("  cluster %d -> expert %d for %.1f%% of its tokens%n", c, majority[c], 100 * purity[c]));
            }
            sb.append("  held-out load per expert ").append(java.util.Arrays.toString(load))
                    .append(String.format(", busiest/least busy = %.2f", loadRatio()));
            return sb.toString();
        }
    }

    /** The synthetic task: cluster centres and target maps. */
    private record Task(double[][] centres, double[][] maps) {
        static Task random(SplittableRandom rnd) {
            double[][] centres = new double[CLUSTERS][D];
            double[][] maps = new double[CLUSTERS][D * D];
            for (int c = 0; c < CLUSTERS; c++) {
                for (int j = 0; j < D; j++) {
                    centres[c][j] = 3 / Math.sqrt(D) * rnd.nextGaussian();
                }
                for (int i = 0; i < D * D; i++) {
                    maps[c][i] = rnd.nextGaussian() / Math.sqrt(D);
                }
            }
            return new Task(centres, maps);
        }

        /** Fills x [T, d], targets [T, d] and cluster [T] with T random tokens. */
        void sample(SplittableRandom rnd, double[] x, double[] target, int[] cluster) {
            int tokens = cluster.length;
            for (int t = 0; t < tokens; t++) {
                int c = rnd.nextInt(CLUSTERS);
                cluster[t] = c;
                for (int j = 0; j < D; j++) {
                    x[t * D + j] = centres[c][j] + 0.3 * rnd.nextGaussian();
                }
                for (int i = 0; i < D; i++) {
                    double s = 0;
                    for (int j = 0; j < D; j++) {
                        s += maps[c][i * D + j] * x[t * D + j];
                    }
                    target[t * D + i] = s;
                }
            }
        }
    }

    /** The layer trained by {@link #train}. */
    static MoeConfig config(double alpha) {
        return MoeConfig.builder().modelDim(D).hiddenDim(H).experts(EXPERTS).activation(Activation.GELU)
                .router(TokenChoiceRouterConfig.topK(1).withGates(GateNormalization.NONE)).capacity(Capacity.dropless())
                .losses(LossWeights.of().aux(alpha, AuxNormalization.TOP1)).routerBias(true).build();
    }

    /**
     * Trains with SGD and reports what was learned.
     *
     * @param alpha        the aux-loss coefficient α
     * @param steps        SGD steps, one fresh batch of {@value #BATCH} tokens each
     * @param learningRate the SGD step size
     * @param seed         the task, the initial weights and the batches
     */
    static Result train(double alpha, int steps, double learningRate, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        Task task = Task.random(rnd);
        MoeConfig config = config(alpha);
        double[][] w = {
            gaussian(rnd, D * EXPERTS, 1 / Math.sqrt(D)),        // router
            new double[EXPERTS],                                   // routerBias
            gaussian(rnd, EXPERTS * D * H, 1 / Math.sqrt(D)),      // wIn
            gaussian(rnd, EXPERTS * H * D, 1 / Math.sqrt(H)),      // wOut
        };
        w[1][0] = UNLUCKY_BIAS;

        double[] evalX = new double[EVAL * D];
        double[] evalTarget = new double[EVAL * D];
        int[] evalCluster = new int[EVAL];
        task.sample(new SplittableRandom(seed ^ 0x5EED), evalX, evalTarget, evalCluster);
        double initialMse = mse(layer(config, w).forward(evalX, EVAL, ForwardOptions.inference()).y(), evalTarget);

        double[] x = new double[BATCH * D];
        double[] target = new double[BATCH * D];
        int[] cluster = new int[BATCH];
        for (int step = 0; step < steps; step++) {
            task.sample(rnd, x, target, cluster);
            ReferenceLayer layer = layer(config, w);
            ReferenceForward f = layer.forward(x, BATCH, ForwardOptions.inference());
            double[] dY = new double[BATCH * D];
            for (int i = 0; i < dY.length; i++) {
                dY[i] = 2 * (f.y()[i] - target[i]) / BATCH;   // d(MSE)/dy
            }
            ReferenceGradients g = layer.backward(f, dY, EnumSet.noneOf(Freeze.class));
            double[][] grads = {g.router(), g.routerBias(), g.wIn(), g.wOut()};
            for (int p = 0; p < w.length; p++) {
                for (int i = 0; i < w[p].length; i++) {
                    w[p][i] -= learningRate * grads[p][i];
                }
            }
        }

        ReferenceForward eval = layer(config, w).forward(evalX, EVAL, ForwardOptions.inference());
        int[][] counts = new int[CLUSTERS][EXPERTS];
        int[] load = new int[EXPERTS];
        for (int t = 0; t < EVAL; t++) {
            int e = eval.plan().selected()[t];
            counts[evalCluster[t]][e]++;
            load[e]++;
        }
        int[] majority = new int[CLUSTERS];
        double[] purity = new double[CLUSTERS];
        for (int c = 0; c < CLUSTERS; c++) {
            int total = 0;
            for (int e = 0; e < EXPERTS; e++) {
                total += counts[c][e];
                if (counts[c][e] > counts[c][majority[c]]) {
                    majority[c] = e;
                }
            }
            purity[c] = (double) counts[c][majority[c]] / total;
        }
        return new Result(initialMse, mse(eval.y(), evalTarget), majority, purity, load);
    }

    private static ReferenceLayer layer(MoeConfig config, double[][] w) {
        return new ReferenceLayer(config, new ReferenceWeights(D, H, EXPERTS, w[0], w[1], null, w[2], null, w[3], null, null));
    }

    private static double mse(double[] y, double[] target) {
        double s = 0;
        for (int i = 0; i < y.length; i++) {
            s += (y[i] - target[i]) * (y[i] - target[i]);
        }
        return s / (y.length / D);
    }

    private static double[] gaussian(SplittableRandom rnd, int n, double std) {
        double[] a = new double[n];
        for (int i = 0; i < n; i++) {
            a[i] = std * rnd.nextGaussian();
        }
        return a;
    }

    /**
     * Prints both runs.
     *
     * @param args [steps [learning rate [seed [α]]]], by default {@value #STEPS}, {@value #LEARNING_RATE},
     *             {@value #SEED}, {@value #ALPHA}
     */
    public static void main(String[] args) {
        int steps = args.length > 0 ? Integer.parseInt(args[0]) : STEPS;
        double lr = args.length > 1 ? Double.parseDouble(args[1]) : LEARNING_RATE;
        long seed = args.length > 2 ? Long.parseLong(args[2]) : SEED;
        double alpha = args.length > 3 ? Double.parseDouble(args[3]) : ALPHA;
        long t0 = System.nanoTime();
        System.out.println("alpha = " + alpha + ":\n" + train(alpha, steps, lr, seed));
        System.out.println("alpha = 0:\n" + train(0, steps, lr, seed));
        System.out.printf("%.1f s%n", (System.nanoTime() - t0) / 1e9);
    }
}

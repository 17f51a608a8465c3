package io.github.moe4j.reference;

import io.github.moe4j.api.Activation;
import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;
import org.apache.commons.statistics.distribution.NormalDistribution;

/**
 * The MoE formulas written out again for the tests, as plainly as possible and without calling the
 * reference's classes, so that a property can compare the reference with its definition rather than
 * with itself. Double precision; rows are copied out of row-major arrays.
 */
final class NaiveMoe {
    // T = tokens, d = model dim, h = hidden dim, E = experts, k = experts per token
    private static final NormalDistribution STANDARD_NORMAL = NormalDistribution.of(0, 1);

    private NaiveMoe() {}

    /** Row t of a [rows, n] matrix. */
    static double[] row(double[] m, int t, int n) {
        return Arrays.copyOfRange(m, t * n, (t + 1) * n);
    }

    /** \( z = x W + b \): x [T, d], W [d, E], b [E] or null. */
    static double[] logits(double[] x, int tokens, int d, double[] w, double[] b, int e) {
        double[] z = new double[tokens * e];
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < e; i++) {
                double s = b == null ? 0 : b[i];
                for (int j = 0; j < d; j++) {
                    s += x[t * d + j] * w[j * e + i];
                }
                z[t * e + i] = s;
            }
        }
        return z;
    }

    /** \( \log \sum_i e^{z_i} \), shifted by the maximum. */
    static double logSumExp(double[] z) {
        double m = Arrays.stream(z).max().orElse(Double.NEGATIVE_INFINITY);
        double s = 0;
        for (double v : z) {
            s += Math.exp(v - m);
        }
        return m + Math.log(s);
    }

    /** softmax(z). */
    static double[] softmax(double[] z) {
        double lse = logSumExp(z);
        return Arrays.stream(z).map(v -> Math.exp(v - lse)).toArray();
    }

    /** Softmax over the entries {@code subset} of z. */
    static double[] softmaxOver(double[] z, int[] subset) {
        double[] picked = Arrays.stream(subset).mapToDouble(i -> z[i]).toArray();
        return softmax(picked);
    }

    /** All indices of {@code keys}, sorted by key descending then index ascending (SPEC §3). */
    static int[] ranking(double[] keys) {
        return IntStream.range(0, keys.length).boxed()
                .sorted(Comparator.comparingDouble((Integer i) -> -keys[i]).thenComparingInt(i -> i))
                .mapToInt(Integer::intValue).toArray();
    }

    /** The first k of {@link #ranking}. */
    static int[] topK(double[] keys, int k) {
        return Arrays.copyOf(ranking(keys), k);
    }

    /** \( \operatorname{softplus}(a) = \log(1 + e^a) \). */
    static double softplus(double a) {
        return a > 30 ? a + Math.log1p(Math.exp(-a)) : Math.log1p(Math.exp(a));
    }

    /** The standard normal CDF, from Commons Statistics. */
    static double phi(double v) {
        return STANDARD_NORMAL.cumulativeProbability(v);
    }

    /** tensor2tensor's {@code cv_squared}: population variance over (n + 1e-10), divided by mean² + 1e-10. */
    static double cvSquared(double[] v) {
        double n = v.length + 1e-10;
        double mean = Arrays.stream(v).sum() / n;
        double var = Arrays.stream(v).map(a -> (a - mean) * (a - mean)).sum() / n;
        return var / (mean * mean + 1e-10);
    }

    /** The expert nonlinearity \( \phi(a) \), from its textbook formula. */
    static double activate(Activation kind, double a) {
        return switch (kind) {
            case RELU -> Math.max(a, 0);
            case GELU, GEGLU -> a * phi(a);
            case GELU_TANH, GEGLU_TANH -> 0.5 * a * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (a + 0.044715 * a * a * a)));
            case SILU, SWIGLU -> a / (1 + Math.exp(-a));
        };
    }

    /**
     * \( f_e(x) = W_{out}^\top(\phi(W_{in}^\top x + b_{in}) [\odot W_{gate}^\top x]) + b_{out} \) for one
     * token x of length d.
     */
    static double[] expert(ReferenceWeights w, Activation kind, int e, double[] x) {
        int d = w.d();
        int h = w.h();
        double[] hidden = new double[h];
        for (int i = 0; i < h; i++) {
            double a = w.bIn() == null ? 0 : w.bIn()[e * h + i];
            double b = 0;
            for (int j = 0; j < d; j++) {
                a += x[j] * w.wIn()[e * d * h + j * h + i];
                if (kind.isGated()) {
                    b += x[j] * w.wGate()[e * d * h + j * h + i];
                }
            }
            hidden[i] = activate(kind, a) * (kind.isGated() ? b : 1);
        }
        double[] out = new double[d];
        for (int j = 0; j < d; j++) {
            double s = w.bOut() == null ? 0 : w.bOut()[e * d + j];
            for (int i = 0; i < h; i++) {
                s += hidden[i] * w.wOut()[e * h * d + i * d + j];
            }
            out[j] = s;
        }
        return out;
    }
}

package io.github.moe4j.reference;

/**
 * The softmax and log-sum-exp of a row, with the row maximum subtracted first (SPEC §1):
 * \( \operatorname{lse}(z) = m + \log \sum_i e^{z_i - m} \), \( m = \max_i z_i \),
 * \( \operatorname{softmax}(z)_i = e^{z_i - \operatorname{lse}(z)} \).
 */
public final class Softmax {
    private Softmax() {}

    /** lse of {@code z[offset .. offset + n)}. */
    public static double logSumExp(double[] z, int offset, int n) {
        double m = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            m = Math.max(m, z[offset + i]);
        }
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += Math.exp(z[offset + i] - m);
        }
        return m + Math.log(sum);
    }

    /** softmax of {@code z[offset .. offset + n)} into {@code out[outOffset ..]}. */
    public static void softmax(double[] z, int offset, int n, double[] out, int outOffset) {
        double lse = logSumExp(z, offset, n);
        for (int i = 0; i < n; i++) {
            out[outOffset + i] = Math.exp(z[offset + i] - lse);
        }
    }

    /** Row-wise softmax of a [rows, n] matrix. */
    public static double[] rows(double[] z, int rows, int n) {
        double[] p = new double[rows * n];
        for (int r = 0; r < rows; r++) {
            softmax(z, r * n, n, p, r * n);
        }
        return p;
    }

    /**
     * Softmax over a subset of a row: \( g_j = e^{z_{s_j} - m} / \sum_{j'} e^{z_{s_{j'}} - m} \) for the
     * indices {@code subset} of {@code z[offset ..]}, m their maximum. Empty subset: empty result.
     */
    public static double[] overSubset(double[] z, int offset, int[] subset) {
        double m = Double.NEGATIVE_INFINITY;
        for (int s : subset) {
            m = Math.max(m, z[offset + s]);
        }
        double sum = 0;
        double[] g = new double[subset.length];
        for (int j = 0; j < subset.length; j++) {
            g[j] = Math.exp(z[offset + subset[j]] - m);
            sum += g[j];
        }
        for (int j = 0; j < subset.length; j++) {
            g[j] /= sum;
        }
        return g;
    }
}

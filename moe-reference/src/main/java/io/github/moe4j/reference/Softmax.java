package io.github.moe4j.reference;

/**
 * The softmax and log-sum-exp of a row, with the row maximum subtracted first (SPEC §1):
 * \( \operatorname{lse}(z) = m + \log \sum_i e^{z_i - m} \), \( m = \max_i z_i \),
 * \( \operatorname{softmax}(z)_i = e^{z_i - \operatorname{lse}(z)} \).
 *
 * <p>Backward (each beside its forward): \( \partial \operatorname{lse} / \partial z_i = s_i \) and
 * \( \partial L / \partial z_i = s_i (\partial L / \partial s_i - \sum_j s_j\, \partial L / \partial s_j) \),
 * with s the softmax the forward returned.
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

    /**
     * Backward of {@link #logSumExp}: adds \( \partial L / \partial z_i = \partial L / \partial \operatorname{lse} \cdot s_i \),
     * where {@code s} holds \( \operatorname{softmax}(z) \) of the row.
     *
     * @param s       softmax of the row, at {@code offset}
     * @param dLse    \( \partial L / \partial \operatorname{lse} \)
     * @param dZ      accumulates \( \partial L / \partial z \), at {@code offset}
     */
    public static void logSumExpBackward(double[] s, int offset, int n, double dLse, double[] dZ) {
        // forward: lse = m + log(Σ_i exp(z_i − m)), so ∂lse/∂z_i = exp(z_i − lse) = s_i
        for (int i = 0; i < n; i++) {
            dZ[offset + i] += dLse * s[offset + i];
        }
    }

    /** softmax of {@code z[offset .. offset + n)} into {@code out[outOffset ..]}. */
    public static void softmax(double[] z, int offset, int n, double[] out, int outOffset) {
        double lse = logSumExp(z, offset, n);
        for (int i = 0; i < n; i++) {
            out[outOffset + i] = Math.exp(z[offset + i] - lse);
        }
    }

    /**
     * Backward of {@link #softmax}: adds \( \partial L / \partial z_i = s_i (ds_i - \sum_j s_j\, ds_j) \).
     *
     * @param s      the softmax the forward returned, at {@code offset}
     * @param dS     \( \partial L / \partial s \), at {@code offset}
     * @param dZ     accumulates \( \partial L / \partial z \), at {@code offset}
     */
    public static void softmaxBackward(double[] s, double[] dS, int offset, int n, double[] dZ) {
        // forward: out[i] = exp(z[i] − lse), so ∂s_i/∂z_j = s_i (δ_ij − s_j)
        double sDs = 0;
        for (int j = 0; j < n; j++) {
            sDs += s[offset + j] * dS[offset + j];
        }
        for (int i = 0; i < n; i++) {
            dZ[offset + i] += s[offset + i] * (dS[offset + i] - sDs);
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

    /**
     * Backward of {@link #overSubset}: adds \( \partial L / \partial z_{s_j} = g_j (dg_j - \sum_{j'} g_{j'}\, dg_{j'}) \)
     * to the subset's entries of the row; the other entries of the row get nothing, since g does
     * not depend on them.
     *
     * @param g      the gates the forward returned, one per subset entry
     * @param subset indices into the row at {@code offset}
     * @param dG     \( \partial L / \partial g \), one per subset entry
     * @param dZ     accumulates \( \partial L / \partial z \), row at {@code offset}
     */
    public static void overSubsetBackward(double[] g, int[] subset, double[] dG, double[] dZ, int offset) {
        // forward: g[j] = exp(z[s_j] − m) / Σ_j' exp(z[s_j'] − m), a softmax over the subset
        double gDg = 0;
        for (int j = 0; j < subset.length; j++) {
            gDg += g[j] * dG[j];
        }
        for (int j = 0; j < subset.length; j++) {
            dZ[offset + subset[j]] += g[j] * (dG[j] - gDg);
        }
    }
}

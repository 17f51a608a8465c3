package io.github.moe4j.reference;

/**
 * The k largest of n keys, best first, with moe4j's one tie rule (SPEC §3): <b>value descending,
 * then index ascending</b>, as {@code jax.lax.top_k}, {@code tf.math.top_k} and {@code torch.argmax}
 * break ties.
 */
public final class TopK {
    private TopK() {}

    /**
     * Indices of the k largest of {@code keys[offset + i*stride]}, i in [0, n), best first.
     * Written as k passes of argmax (t2t {@code _my_top_k}): the first index wins a tie because
     * only a strictly larger key replaces the current best.
     */
    public static int[] select(double[] keys, int offset, int stride, int n, int k) {
        if (k < 0 || k > n) {
            throw new IllegalArgumentException("k must be in [0, " + n + "], got " + k);
        }
        int[] chosen = new int[k];
        boolean[] taken = new boolean[n];
        for (int r = 0; r < k; r++) {
            int best = -1;
            for (int i = 0; i < n; i++) {
                if (!taken[i] && (best < 0 || keys[offset + i * stride] > keys[offset + best * stride])) {
                    best = i;
                }
            }
            taken[best] = true;
            chosen[r] = best;
        }
        return chosen;
    }

    /** The k largest of a contiguous row {@code keys[offset .. offset + n)}. */
    public static int[] ofRow(double[] keys, int offset, int n, int k) {
        return select(keys, offset, 1, n, k);
    }
}

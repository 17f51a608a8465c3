package io.github.moe4j.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.github.moe4j.reference.TopK;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * {@link CpuRouter#topK}: the k largest keys, value descending, ties to the lower index (SPEC §3),
 * as the reference's {@link TopK} (k passes of argmax) selects them; -0.0 and 0.0 are one value.
 */
class TopKTest {

    @Test
    void picksTheLargestKeysBestFirstWithTiesToTheLowerIndex() {
        double[] keys = {0.5, 2, 2, -1, 3, 2};
        int[] out = new int[4];
        CpuRouter.topK(keys, 0, keys.length, 4, out, 0);
        assertArrayEquals(new int[] {4, 1, 2, 5}, out);
    }

    @Test
    void agreesWithTheReferenceOnKeysFullOfTies() {
        SplittableRandom rnd = new SplittableRandom(7);
        double[] values = {-1, -0.0, 0.0, 0.25, 1, 1e-300};
        for (int trial = 0; trial < 3000; trial++) {
            int n = 1 + rnd.nextInt(70);
            int k = 1 + rnd.nextInt(n);
            int offset = rnd.nextInt(3);
            double[] keys = new double[offset + n];
            boolean fewValues = trial % 2 == 0;
            for (int i = 0; i < keys.length; i++) {
                keys[i] = fewValues ? values[rnd.nextInt(values.length)] : rnd.nextGaussian();
            }
            int at = rnd.nextInt(3);
            int[] out = new int[at + k + 1];
            Arrays.fill(out, -7);
            CpuRouter.topK(keys, offset, n, k, out, at);
            int[] want = TopK.ofRow(keys, offset, n, k);
            String where = "n=" + n + " k=" + k + " keys=" + Arrays.toString(keys);
            assertArrayEquals(want, Arrays.copyOfRange(out, at, at + k), where);
            // nothing outside out[at .. at + k) written
            for (int i = 0; i < at; i++) {
                assertEquals(-7, out[i], where);
            }
            assertEquals(-7, out[at + k], where);
        }
    }
}

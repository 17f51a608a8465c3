package io.github.moe4j.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ludovic.netlib.blas.BLAS;
import dev.ludovic.netlib.blas.JavaBLAS;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** {@link RowMajorGemm} against a naive row-major loop in double, on the BLAS netlib loads and on its Java BLAS. */
class RowMajorGemmTest {
    private static final double U = Math.ulp(1f) / 2;

    static Stream<Arguments> cases() {
        Stream.Builder<Arguments> s = Stream.builder();
        BLAS[] impls = {BLAS.getInstance(), JavaBLAS.getInstance()};
        int[][] sizes = {{1, 1, 1}, {3, 5, 7}, {17, 1, 9}, {1, 13, 4}, {33, 65, 31}, {128, 96, 200}, {5, 3, 0}};
        for (BLAS b : impls) {
            for (int[] mnk : sizes) {
                for (int flags = 0; flags < 4; flags++) {
                    s.add(Arguments.of(b.getClass().getSimpleName(), b, mnk[0], mnk[1], mnk[2], (flags & 1) != 0, (flags & 2) != 0));
                }
            }
        }
        return s.build();
    }

    @ParameterizedTest(name = "{0} m={2} n={3} k={4} transA={5} transB={6}")
    @MethodSource("cases")
    void matchesANaiveLoop(String impl, BLAS blas, int m, int n, int k, boolean transA, boolean transB) {
        SplittableRandom rnd = new SplittableRandom(31L * m + 7L * n + k + (transA ? 1 : 0) + (transB ? 2 : 0));
        // stored shapes with padding columns (leading dimension > width) and leading offsets
        int aRows = transA ? k : m;
        int aCols = transA ? m : k;
        int bRows = transB ? n : k;
        int bCols = transB ? k : n;
        int lda = aCols + 3;
        int ldb = bCols + 2;
        int ldc = n + 5;
        int offA = 11;
        int offB = 4;
        int offC = 7;
        float[] a = random(rnd, offA + aRows * lda + 1);
        float[] b = random(rnd, offB + bRows * ldb + 1);
        float[] c = random(rnd, offC + m * ldc + 2);
        float[] before = c.clone();
        float alpha = 0.75f;
        float beta = -1.5f;

        new RowMajorGemm(blas).gemm(transA, transB, m, n, k, alpha, a, offA, lda, b, offB, ldb, beta, c, offC, ldc);

        boolean[] inC = new boolean[c.length];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double sum = 0;
                double abs = 0;
                for (int p = 0; p < k; p++) {
                    double av = transA ? a[offA + p * lda + i] : a[offA + i * lda + p];
                    double bv = transB ? b[offB + j * ldb + p] : b[offB + p * ldb + j];
                    sum += av * bv;
                    abs += Math.abs(av * bv);
                }
                int ci = offC + i * ldc + j;
                inC[ci] = true;
                double expected = alpha * sum + beta * before[ci];
                // float32 GEMM error bound: γ_{k+2} (|α| Σ|a b| + |β c|), plus the final rounding
                double bound = (k + 2) * U / (1 - (k + 2) * U) * (Math.abs(alpha) * abs + Math.abs(beta * before[ci]))
                        + U * Math.abs(expected);
                int row = i;
                int col = j;
                assertTrue(Math.abs(c[ci] - expected) <= bound, () -> impl + " C[" + row + ", " + col + "] = " + c[ci]
                        + " but the naive loop gives " + expected + " (bound " + bound + ")");
            }
        }
        for (int i = 0; i < c.length; i++) {
            if (!inC[i]) {
                assertEquals(before[i], c[i], "element " + i + " outside C was written");
            }
        }
    }

    private static float[] random(SplittableRandom rnd, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (rnd.nextDouble() * 2 - 1);
        }
        return v;
    }
}

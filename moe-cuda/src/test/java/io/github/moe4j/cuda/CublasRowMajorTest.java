package io.github.moe4j.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@link CublasRowMajor#plan} fed to a Java emulation of column-major {@code sgemm} (the BLAS
 * definition, written from the reference BLAS loop) gives the row-major product computed directly.
 * This checks the row-major trick without cuBLAS or a GPU.
 */
class CublasRowMajorTest {

    /**
     * Column-major C(m×n) = op(A)(m×k)·op(B)(k×n) + β C with leading dimensions: the BLAS definition
     * (op = OP_T reads A(l, i) where OP_N reads A(i, l)).
     */
    static void sgemmColumnMajor(boolean transA, boolean transB, int m, int n, int k, float[] a, int aOff, int lda, float[] b,
                                 int bOff, int ldb, float beta, float[] c, int cOff, int ldc) {
        for (int j = 0; j < n; j++) {
            for (int i = 0; i < m; i++) {
                double s = beta == 0 ? 0 : beta * c[cOff + i + j * ldc];
                for (int l = 0; l < k; l++) {
                    s += a[aOff + (transA ? l + i * lda : i + l * lda)] * b[bOff + (transB ? j + l * ldb : l + j * ldb)];
                }
                c[cOff + i + j * ldc] = (float) s;
            }
        }
    }

    /** The plan computes row-major C = A B at offsets, including degenerate and non-square shapes. */
    @ParameterizedTest(name = "m={0} n={1} k={2} transA={3} transB={4}")
    @CsvSource({"1,1,1,false,false", "3,5,7,false,false", "7,5,3,false,false", "16,16,16,false,false", "17,1,33,false,false",
            "1,9,2,false,false", "4,6,0,false,false", "3,5,7,true,false", "3,5,7,false,true", "7,5,3,true,true", "17,1,33,true,false",
            "1,9,2,false,true"})
    void planMatchesTheRowMajorProduct(int m, int n, int k, boolean transA, boolean transB) {
        SplittableRandom rnd = new SplittableRandom(m * 100 + n * 10 + k);
        int offA = 3;
        int offB = 5;
        int offC = 2;
        float[] a = new float[offA + m * k];
        float[] b = new float[offB + k * n];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) rnd.nextDouble(-1, 1);
        }
        for (int i = 0; i < b.length; i++) {
            b[i] = (float) rnd.nextDouble(-1, 1);
        }
        float[] c = new float[offC + m * n];
        CublasRowMajor.ColumnMajorCall p = CublasRowMajor.plan(m, n, k, transA, transB);
        float[] first = p.firstIsRowB() ? b : a;
        float[] second = p.firstIsRowB() ? a : b;
        sgemmColumnMajor(p.transFirst(), p.transSecond(), p.m(), p.n(), p.k(), first, p.firstIsRowB() ? offB : offA, p.lda(), second, p.firstIsRowB() ? offA : offB,
                p.ldb(), 0f, c, offC, p.ldc());
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int l = 0; l < k; l++) {
                    s += a[offA + (transA ? l * m + i : i * k + l)] * b[offB + (transB ? j * k + l : l * n + j)];
                }
                assertEquals((float) s, c[offC + i * n + j], "C[" + i + ", " + j + "]");
            }
        }
    }

    /**
     * The row-major batched product computed naively: for each entry i, C_i = op(A_i) op(B_i) with
     * A_i at {@code offA + i * strideA}, B_i at {@code offB + i * strideB}, C_i at {@code offC + i * strideC}.
     */
    static void naiveBatched(boolean transA, boolean transB, int m, int n, int k, float[] a, int offA, int strideA, float[] b,
                             int offB, int strideB, float[] c, int offC, int strideC, int batch) {
        for (int p = 0; p < batch; p++) {
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double s = 0;
                    for (int l = 0; l < k; l++) {
                        s += a[offA + p * strideA + (transA ? l * m + i : i * k + l)]
                                * b[offB + p * strideB + (transB ? j * k + l : l * n + j)];
                    }
                    c[offC + p * strideC + i * n + j] = (float) s;
                }
            }
        }
    }

    /**
     * {@link CublasRowMajor#planStridedBatched} fed to a Java emulation of column-major
     * {@code cublasSgemmStridedBatched} (the per-entry BLAS definition at the planned strides) gives
     * what a naive Java batched row-major GEMM gives, at odd sizes, strides with gaps between entries
     * and several batch counts, and leaves the gaps of C untouched. This is how the cuBLAS call plan
     * of the strided-batched expert GEMMs is checked without a GPU.
     */
    @ParameterizedTest(name = "m={0} n={1} k={2} transA={3} transB={4} batch={5} gaps={6},{7},{8}")
    @CsvSource({"1,1,1,false,false,1,0,0,0", "3,5,7,false,false,3,0,0,0", "7,5,3,false,false,5,2,3,1", "17,1,33,false,false,2,1,0,4",
            "1,9,2,false,true,4,5,1,0", "3,5,7,true,false,3,0,2,3", "5,3,7,true,false,7,3,3,3", "7,5,3,true,true,2,1,1,1",
            "4,6,0,false,false,3,0,0,2", "13,11,9,false,true,6,7,0,5"})
    void stridedBatchedPlanMatchesANaiveBatchedProduct(int m, int n, int k, boolean transA, boolean transB, int batch, int gapA,
                                                       int gapB, int gapC) {
        SplittableRandom rnd = new SplittableRandom(m * 1000 + n * 100 + k * 10 + batch);
        int offA = 3;
        int offB = 5;
        int offC = 2;
        int strideA = m * k + gapA;
        int strideB = k * n + gapB;
        int strideC = m * n + gapC;
        float[] a = new float[offA + batch * strideA];
        float[] b = new float[offB + batch * strideB];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) rnd.nextDouble(-1, 1);
        }
        for (int i = 0; i < b.length; i++) {
            b[i] = (float) rnd.nextDouble(-1, 1);
        }
        float sentinel = 12345f;
        float[] c = new float[offC + batch * strideC];
        java.util.Arrays.fill(c, sentinel);
        CublasRowMajor.StridedBatchedCall sb = CublasRowMajor.planStridedBatched(m, n, k, transA, transB, strideA, strideB, strideC,
                batch);
        CublasRowMajor.ColumnMajorCall p = sb.call();
        assertEquals(batch, sb.batch());
        float[] first = p.firstIsRowB() ? b : a;
        float[] second = p.firstIsRowB() ? a : b;
        int firstOff = p.firstIsRowB() ? offB : offA;
        int secondOff = p.firstIsRowB() ? offA : offB;
        for (int i = 0; i < sb.batch(); i++) {
            sgemmColumnMajor(p.transFirst(), p.transSecond(), p.m(), p.n(), p.k(), first, (int) (firstOff + i * sb.strideFirst()),
                    p.lda(), second, (int) (secondOff + i * sb.strideSecond()), p.ldb(), 0f, c, (int) (offC + i * sb.strideC()), p.ldc());
        }
        float[] expected = new float[c.length];
        java.util.Arrays.fill(expected, sentinel);
        naiveBatched(transA, transB, m, n, k, a, offA, strideA, b, offB, strideB, expected, offC, strideC, batch);
        for (int i = 0; i < c.length; i++) {
            assertEquals(expected[i], c[i], "element " + i + " of the batched C (gaps and the offset keep " + sentinel + ")");
        }
    }
}

package io.github.moe4j.cpu;

import dev.ludovic.netlib.blas.BLAS;

/**
 * Row-major SGEMM on a column-major (Fortran) BLAS: the one place where moe-cpu maps its
 * row-major matrices onto netlib's {@code sgemm}. It implements the matrix products of the
 * reference's {@code ExpertNetwork} (\( x W_{in} \), \( \phi(\cdot) W_{out} \) and their
 * transposes in backward) and of its router (\( \tilde{x} W_r \), \( x W_{noise} \) and theirs) for a
 * block of rows at once.
 *
 * <p>A row-major [m, n] matrix with leading dimension ld is, read column-major, its transpose
 * [n, m] with the same leading dimension. So \( C = \operatorname{op}(A) \operatorname{op}(B) \)
 * row-major is \( C^\top = \operatorname{op}(B)^\top \operatorname{op}(A)^\top \) column-major:
 * the operands swap, the transpose flags stay with their operand, and m and n swap.
 */
final class RowMajorGemm {
    private final BLAS blas;

    RowMajorGemm(BLAS blas) {
        this.blas = blas;
    }

    /**
     * \( C \leftarrow \alpha\, \operatorname{op}(A) \operatorname{op}(B) + \beta C \), all row-major:
     * op(A) is [m, k], op(B) is [k, n], C is [m, n]. Does nothing when m or n is 0; scales C by
     * β when k is 0.
     *
     * @param transA whether op(A) = Aᵀ (A stored [k, m]) rather than A (stored [m, k])
     * @param transB whether op(B) = Bᵀ (B stored [n, k]) rather than B (stored [k, n])
     * @param lda    the row stride of A as stored
     * @param ldb    the row stride of B as stored
     * @param ldc    the row stride of C
     */
    void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha, float[] a, int offA, int lda,
              float[] b, int offB, int ldb, float beta, float[] c, int offC, int ldc) {
        if (m == 0 || n == 0) {
            return;
        }
        if (k == 0) {
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    c[offC + i * ldc + j] = beta == 0f ? 0f : beta * c[offC + i * ldc + j];
                }
            }
            return;
        }
        blas.sgemm(transB ? "T" : "N", transA ? "T" : "N", n, m, k, alpha, b, offB, ldb, a, offA, lda, beta, c, offC, ldc);
    }
}

package io.github.moe4j.cuda;

/**
 * The one place where moe4j's row-major matrices meet cuBLAS's column-major convention.
 *
 * <p>A row-major M×K buffer is, read column-major, the K×M matrix \( A^\top \). So the row-major
 * product \( C = A B \) (A [m, k], B [k, n], C [m, n]) is computed as the column-major product
 * \( C^\top = B^\top A^\top \): {@code cublasSgemm(h, OP_N, OP_N, n, m, k, 1, B, n, A, k, 0, C, n)},
 * with B passed first. A transposed row-major operand (A stored [k, m], B stored [n, k]) read
 * column-major is op(A) itself, so its column-major op becomes {@code OP_T} and its leading
 * dimension the stored row length: {@code cublasSgemm(h, opB, opA, n, m, k, 1, B, transB ? k : n,
 * A, transA ? m : k, beta, C, n)}. Every GEMM of the backend goes through {@link #plan};
 * {@code CublasRowMajorTest} checks the plan against a Java column-major SGEMM.
 */
final class CublasRowMajor {
    private CublasRowMajor() {}

    /**
     * The arguments of one column-major {@code cublasSgemm(handle, opFirst, opSecond, m, n, k, α, first,
     * lda, second, ldb, β, c, ldc)}.
     *
     * @param transFirst   whether opFirst is {@code OP_T}
     * @param transSecond  whether opSecond is {@code OP_T}
     * @param m            rows of the column-major result
     * @param n            columns of the column-major result
     * @param k            the inner dimension
     * @param firstIsRowB  whether the first operand is the row-major B (always, by the trick)
     * @param lda          leading dimension of the first operand
     * @param ldb          leading dimension of the second operand
     * @param ldc          leading dimension of C
     */
    record ColumnMajorCall(boolean transFirst, boolean transSecond, int m, int n, int k, boolean firstIsRowB, int lda,
                           int ldb, int ldc) {}

    /** The column-major call computing row-major C [m, n] = A [m, k] B [k, n]. */
    static ColumnMajorCall plan(int m, int n, int k) {
        return plan(m, n, k, false, false);
    }

    /**
     * The column-major call computing row-major C [m, n] = op(A) op(B), op(A) [m, k], op(B) [k, n],
     * with A stored [k, m] when {@code transA} and B stored [n, k] when {@code transB}.
     */
    static ColumnMajorCall plan(int m, int n, int k, boolean transA, boolean transB) {
        return new ColumnMajorCall(transB, transA, n, m, k, true, Math.max(1, transB ? k : n), Math.max(1, transA ? m : k),
                Math.max(1, n));
    }
}

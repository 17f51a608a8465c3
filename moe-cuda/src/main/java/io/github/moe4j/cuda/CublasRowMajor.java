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
 *
 * <p>A strided batch of row-major GEMMs (the i-th reading A at {@code i * strideA}, B at
 * {@code i * strideB}, writing C at {@code i * strideC}) is the same column-major call per batch
 * entry, so {@code cublasSgemmStridedBatched} gets the single-GEMM plan with B's stride as the first
 * operand's and A's as the second's: {@code cublasSgemmStridedBatched(h, opB, opA, n, m, k, 1, B,
 * ldb', strideB, A, lda', strideA, beta, C, n, strideC, batch)} ({@link #planStridedBatched});
 * {@code CublasRowMajorTest} checks it against a naive Java batched GEMM.
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

    /**
     * The arguments of one column-major {@code cublasSgemmStridedBatched(handle, opFirst, opSecond, m, n, k,
     * α, first, lda, strideFirst, second, ldb, strideSecond, β, c, ldc, strideC, batch)}.
     *
     * @param call         the per-entry column-major call (operands, dimensions, leading dimensions)
     * @param strideFirst  elements between the first operand of consecutive entries
     * @param strideSecond elements between the second operand of consecutive entries
     * @param strideC      elements between the C of consecutive entries
     * @param batch        the number of entries
     */
    record StridedBatchedCall(ColumnMajorCall call, long strideFirst, long strideSecond, long strideC, int batch) {}

    /**
     * The column-major strided-batched call computing, for i in [0, batch), row-major
     * C_i [m, n] = op(A_i) op(B_i), with A_i at {@code i * strideA}, B_i at {@code i * strideB} and
     * C_i at {@code i * strideC} elements (transposes as in {@link #plan(int, int, int, boolean, boolean)}).
     */
    static StridedBatchedCall planStridedBatched(int m, int n, int k, boolean transA, boolean transB, long strideA, long strideB,
                                                 long strideC, int batch) {
        ColumnMajorCall call = plan(m, n, k, transA, transB);
        return new StridedBatchedCall(call, call.firstIsRowB() ? strideB : strideA, call.firstIsRowB() ? strideA : strideB, strideC,
                batch);
    }
}

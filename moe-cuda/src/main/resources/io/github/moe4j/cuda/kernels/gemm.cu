/*
 * gemm.cu: the portable GEMM, C = op(A) op(B) (+ C when accumulating) for row-major op(A) [M][K],
 * op(B) [K][N], C [M][N], where op(X) is X or its transpose (a transposed A is stored [K][M], a
 * transposed B [N][K]). Used on OpenCL and on CUDA when cuBLAS is missing. Offsets are in
 * elements, so one buffer can hold many experts' matrices back to back.
 *
 * Mirrors:  moe-reference  io.github.moe4j.reference.ExpertNetwork#forward (its two matrix products)
 *           and ReferenceLayer#matmul (router logits); for backward, ExpertNetwork#backward (weight and
           input gradients: transposed operands, accumulation into dX) and
           ReferenceLayer#matmulBackwardInput, ReferenceLayer#matmulBackwardWeight
 * Layout:   row-major; a 2-D launch with global size (N rounded up to TILE, M rounded up to TILE)
 *           and local size (TILE, TILE); dimension 0 runs over columns, 1 over rows
 *
 * Versions:
 *   1  16x16 tiles in local memory, one output element per work-item
 *   2  transposed operands and accumulation (backward) (this file)
 */
#include "moe_portable.h"

#define MOE_TILE 16

KERNEL void gemm_tiled(GLOBAL const float* RESTRICT A, const int offA, GLOBAL const float* RESTRICT B, const int offB,
                       GLOBAL float* RESTRICT C, const int offC, const int M, const int N, const int K,
                       const int transA, const int transB, const int accumulate) {
    LOCAL_MEM float As[MOE_TILE][MOE_TILE];
    LOCAL_MEM float Bs[MOE_TILE][MOE_TILE];
    int col = GID0;
    int row = GID1;
    int lx = LID0;
    int ly = LID1;
    float acc = 0.0f;
    for (int k0 = 0; k0 < K; k0 += MOE_TILE) {
        int ak = k0 + lx;
        int bk = k0 + ly;
        As[ly][lx] = (row < M && ak < K)
                ? A[(size_t)offA + (transA ? (size_t)ak * M + row : (size_t)row * K + ak)] : 0.0f;
        Bs[ly][lx] = (bk < K && col < N)
                ? B[(size_t)offB + (transB ? (size_t)col * K + bk : (size_t)bk * N + col)] : 0.0f;
        LOCAL_BARRIER();
        for (int kk = 0; kk < MOE_TILE; kk++) {
            acc += As[ly][kk] * Bs[kk][lx];
        }
        LOCAL_BARRIER();
    }
    if (row < M && col < N) {
        size_t at = (size_t)offC + (size_t)row * N + col;
        C[at] = accumulate ? C[at] + acc : acc;
    }
}

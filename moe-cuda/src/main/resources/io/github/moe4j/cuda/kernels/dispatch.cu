/*
 * dispatch.cu: gather each kept assignment's input row into its expert's block (dispatch), and
 * combine the expert outputs back per token by gathering in rank order (no atomics, no scatter-add).
 *
 * Mirrors:  moe-reference  io.github.moe4j.reference.ReferenceLayer#dispatch, ReferenceLayer#combine
 * Layout:   x float[T][d], rowOf int[T][k] -> xd float[N][d] (N kept rows, by expert, group, slot);
 *           out float[N][d], gate float[T][k], bOut float[E][d] -> y float[T][d]
 *
 * Versions:
 *   1  naive: one work-item per output element (this file)
 */
#include "moe_portable.h"

/* xd[rowOf[t][j]][c] = x[t][c] for every kept (t, j): T*k*d work-items. */
KERNEL void gather_rows(GLOBAL const float* RESTRICT x, GLOBAL const int* RESTRICT rowOf, GLOBAL float* RESTRICT xd,
                        const int T, const int k, const int d) {
    int i = GID0;
    if (i >= T * k * d) return;
    int a = i / d;
    int c = i % d;
    int row = rowOf[a];
    if (row < 0) return;
    xd[(size_t)row * d + c] = x[(size_t)(a / k) * d + c];
}

/*
 * y[t][c] = sum over kept j, rank 0 first, of gate[t][j] * (out[rowOf[t][j]][c] + bOut[e][c]):
 * T*d work-items. A token with nothing kept outputs exactly 0. hasBias = 0 ignores bOut.
 */
KERNEL void combine_gather(GLOBAL const float* RESTRICT out, GLOBAL const int* RESTRICT rowOf,
                           GLOBAL const int* RESTRICT selected, GLOBAL const float* RESTRICT gate,
                           GLOBAL const float* RESTRICT bOut, GLOBAL float* RESTRICT y,
                           const int T, const int k, const int d, const int hasBias) {
    int i = GID0;
    if (i >= T * d) return;
    int t = i / d;
    int c = i % d;
    float acc = 0.0f;
    for (int j = 0; j < k; j++) {
        size_t a = (size_t)t * k + j;
        int row = rowOf[a];
        if (row < 0) continue;
        float f = out[(size_t)row * d + c];
        if (hasBias) {
            f = bOut[(size_t)selected[a] * d + c] + f;
        }
        acc += gate[a] * f;
    }
    y[i] = acc;
}

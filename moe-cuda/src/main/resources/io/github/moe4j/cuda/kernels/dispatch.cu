/*
 * dispatch.cu: gather each kept assignment's input row into its expert's block (dispatch), and
 * combine the expert outputs back per token by gathering in rank order (no atomics, no scatter-add).
 *
 * Mirrors:  moe-reference  io.github.moe4j.reference.ReferenceLayer#dispatch, ReferenceLayer#combine;
 *           backward: ReferenceLayer#expertsBackward (the combine's dg and df, the dispatch's dx)
 *           and ReferenceLayer#routerBackward (the jitter's dx)
 * Layout:   x float[T][d], rowOf int[T][k] -> xd float[N][d] (N rows, by expert, group, slot: the kept
 *           rows back to back (dropless), or [E][G*C] with empty slots left as the caller zeroed them);
 *           out float[N][d], gate float[T][k], bOut float[E][d] -> y float[T][d]
 *
 * Versions:
 *   1  naive: one work-item per output element
 *   2  the backward kernels, each output element owned by one work-item
 *   3  combine_backward_rows writes 0 on an empty slot (rowAssignment < 0) (this file)
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

/*
 * Backward of combine_gather for the gates: dGate[t][j] = sum_c dY[t][c] * (out[row][c] + bOut[e][c])
 * for a kept assignment (row = rowOf[t][j]), 0 for a dropped one. T*k work-items.
 */
KERNEL void combine_backward_gates(GLOBAL const float* RESTRICT out, GLOBAL const int* RESTRICT rowOf,
                                   GLOBAL const int* RESTRICT selected, GLOBAL const float* RESTRICT bOut,
                                   GLOBAL const float* RESTRICT dY, GLOBAL float* RESTRICT dGate,
                                   const int T, const int k, const int d, const int hasBias) {
    int a = GID0;
    if (a >= T * k) return;
    int row = rowOf[a];
    if (row < 0) {
        dGate[a] = 0.0f;
        return;
    }
    size_t t = (size_t)(a / k);
    float s = 0.0f;
    for (int c = 0; c < d; c++) {
        float f = out[(size_t)row * d + c];
        if (hasBias) {
            f = bOut[(size_t)selected[a] * d + c] + f;
        }
        s += dY[t * d + c] * f;
    }
    dGate[a] = s;
}

/*
 * Backward of combine_gather for the expert outputs: dF[row][c] = gate[a] * dY[t][c], where
 * a = rowAssignment[row] = (t, j), and 0 on an empty slot (rowAssignment[row] < 0). N*d work-items.
 */
KERNEL void combine_backward_rows(GLOBAL const int* RESTRICT rowAssignment, GLOBAL const float* RESTRICT gate,
                                  GLOBAL const float* RESTRICT dY, GLOBAL float* RESTRICT dF,
                                  const int N, const int k, const int d) {
    int i = GID0;
    if (i >= N * d) return;
    int a = rowAssignment[i / d];
    if (a < 0) {
        dF[i] = 0.0f;
        return;
    }
    dF[i] = gate[a] * dY[(size_t)(a / k) * d + i % d];
}

/*
 * dx[t][c] = J(dRouterIn[t][c]) + J'(sum over kept j, rank 0 first, of dXrows[rowOf[t][j]][c]), where
 * J multiplies by the jitter u when the router saw x*u (hasJitter) and J' when the experts did
 * (expertsJittered): the backward of gather_rows and of multiply_elementwise. T*d work-items.
 */
KERNEL void input_gradient(GLOBAL const float* RESTRICT dRouterIn, GLOBAL const float* RESTRICT dXrows,
                           GLOBAL const int* RESTRICT rowOf, GLOBAL const float* RESTRICT u, GLOBAL float* RESTRICT dx,
                           const int T, const int k, const int d, const int hasJitter, const int expertsJittered) {
    int i = GID0;
    if (i >= T * d) return;
    int t = i / d;
    int c = i % d;
    float e = 0.0f;
    for (int j = 0; j < k; j++) {
        int row = rowOf[(size_t)t * k + j];
        if (row < 0) continue;
        e += dXrows[(size_t)row * d + c];
    }
    float r = dRouterIn[i];
    if (hasJitter) {
        r = u[i] * r;
    }
    if (expertsJittered) {
        e = u[i] * e;
    }
    dx[i] = r + e;
}

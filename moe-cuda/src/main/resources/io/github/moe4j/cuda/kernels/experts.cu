/*
 * experts.cu: the expert nonlinearity between the two GEMMs of each expert's feed-forward network.
 *
 * Mirrors:  moe-reference  io.github.moe4j.reference.ExpertNetwork#forward (hidden) and #activate
 * Paper:    Shazeer 2020, "GLU Variants Improve Transformer" (GEGLU, SwiGLU); Hendrycks and Gimpel 2016 (GELU)
 * Layout:   pre float[N][h] (x W_in), lin float[N][h] (x W_gate, gated kinds), bIn float[E][h],
 *           rowExpert int[N]  ->  pre is overwritten with hidden = phi(pre + bIn) * lin  (row-major)
 * Kinds:    0 RELU, 1 GELU (exact, erf), 2 GELU_TANH, 3 SILU; gated != 0 multiplies by lin
 *
 * Versions:
 *   1  naive: one work-item per hidden element (this file)
 */
#include "moe_portable.h"

/* phi(a) of an activation kind: ExpertNetwork#activate. */
DEVICE_FN float moe_activate(const int kind, const float a) {
    if (kind == 0) {
        return a > 0.0f ? a : 0.0f;
    }
    if (kind == 1) {
        return 0.5f * a * (1.0f + erff(a * 0.70710678118654752f));
    }
    if (kind == 2) {
        return 0.5f * a * (1.0f + tanhf(0.79788456080286536f * (a + 0.044715f * a * a * a)));
    }
    return a / (1.0f + expf(-a));
}

/* N*h work-items. hasBias = 0 ignores bIn; gated = 0 ignores lin. */
KERNEL void expert_activation(GLOBAL float* RESTRICT pre, GLOBAL const float* RESTRICT lin,
                              GLOBAL const float* RESTRICT bIn, GLOBAL const int* RESTRICT rowExpert,
                              const int N, const int h, const int kind, const int gated, const int hasBias) {
    int i = GID0;
    if (i >= N * h) return;
    float a = pre[i];
    if (hasBias) {
        a = bIn[(size_t)rowExpert[i / h] * h + i % h] + a;
    }
    float v = moe_activate(kind, a);
    if (gated) {
        v = v * lin[i];
    }
    pre[i] = v;
}

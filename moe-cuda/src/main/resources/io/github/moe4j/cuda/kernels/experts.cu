/*
 * experts.cu: the expert nonlinearity between the two GEMMs of each expert's feed-forward network.
 *
 * Mirrors:  moe-reference  io.github.moe4j.reference.ExpertNetwork#forward (hidden) and #activate;
 *           backward: ExpertNetwork#backward (dA, dB) and #derivative
 * Paper:    Shazeer 2020, "GLU Variants Improve Transformer" (GEGLU, SwiGLU); Hendrycks and Gimpel 2016 (GELU)
 * Layout:   pre float[N][h] (x W_in), lin float[N][h] (x W_gate, gated kinds), bIn float[E][h],
 *           rowExpert int[N]  ->  hidden float[N][h] = phi(pre + bIn) * lin  (row-major); pre and lin
 *           are kept for the backward pass, which turns dHidden into dA = dL/d(pre) and dB = dL/d(lin)
 * Kinds:    0 RELU, 1 GELU (exact, erf), 2 GELU_TANH, 3 SILU; gated != 0 multiplies by lin
 * Empty:    a row with rowExpert < 0 is an empty capacity slot of the [E][C] layout: hidden, dA and dB
 *           are written 0 there and pre, lin and bIn are not read
 *
 * Versions:
 *   1  naive: one work-item per hidden element
 *   2  hidden in its own buffer; the backward kernel
 *   3  empty slots (rowExpert < 0) give exact zeros (this file)
 */
#include "moe_portable.h"

/*
 * phi(a) of an activation kind: ExpertNetwork#activate, in forms without cancellation for large |a|
 * (same values in exact arithmetic): GELU = a Phi(a) = 0.5 a erfc(-a / sqrt 2), so the tail Phi(a) of
 * a very negative a keeps its relative accuracy where 1 + erf(a / sqrt 2) would lose it;
 * tanh-GELU = 0.5 a (1 + tanh(u)) = a / (1 + exp(-2u)); SiLU = a / (1 + exp(-a)).
 */
DEVICE_FN float moe_activate(const int kind, const float a) {
    if (kind == 0) {
        return a > 0.0f ? a : 0.0f;
    }
    if (kind == 1) {
        return 0.5f * a * erfcf(-a * 0.70710678118654752f);
    }
    if (kind == 2) {
        return a / (1.0f + expf(-2.0f * 0.79788456080286536f * (a + 0.044715f * a * a * a)));
    }
    return a / (1.0f + expf(-a));
}

/*
 * phi'(a) of an activation kind: ExpertNetwork#derivative (ReLU's is 0 at 0), again without
 * cancellation: GELU' = Phi(a) + a pdf(a) with Phi(a) = 0.5 erfc(-a / sqrt 2); with s = sigmoid(2u) and
 * s' = sigmoid(-2u) = 1 - s, tanh-GELU' = s + 2 a s s' u' (since 1 + tanh u = 2s, 1 - tanh^2 u = 4 s s');
 * with s = sigmoid(a), s' = sigmoid(-a), SiLU' = s (1 + a s').
 */
DEVICE_FN float moe_derivative(const int kind, const float a) {
    if (kind == 0) {
        return a > 0.0f ? 1.0f : 0.0f;
    }
    if (kind == 1) {
        float cdf = 0.5f * erfcf(-a * 0.70710678118654752f);
        float pdf = expf(-0.5f * a * a) * 0.39894228040143268f;
        return cdf + a * pdf;
    }
    if (kind == 2) {
        float u = 0.79788456080286536f * (a + 0.044715f * a * a * a);
        float du = 0.79788456080286536f * (1.0f + 3.0f * 0.044715f * a * a);
        float s = 1.0f / (1.0f + expf(-2.0f * u));
        float sm = 1.0f / (1.0f + expf(2.0f * u));
        return s + 2.0f * a * s * sm * du;
    }
    float s = 1.0f / (1.0f + expf(-a));
    float sm = 1.0f / (1.0f + expf(a));
    return s * (1.0f + a * sm);
}

/* N*h work-items. hasBias = 0 ignores bIn; gated = 0 ignores lin. */
KERNEL void expert_activation(GLOBAL const float* RESTRICT pre, GLOBAL const float* RESTRICT lin,
                              GLOBAL const float* RESTRICT bIn, GLOBAL const int* RESTRICT rowExpert,
                              GLOBAL float* RESTRICT hidden,
                              const int N, const int h, const int kind, const int gated, const int hasBias) {
    int i = GID0;
    if (i >= N * h) return;
    int ex = rowExpert[i / h];
    if (ex < 0) {
        hidden[i] = 0.0f;
        return;
    }
    float a = pre[i];
    if (hasBias) {
        a = bIn[(size_t)ex * h + i % h] + a;
    }
    float v = moe_activate(kind, a);
    if (gated) {
        v = v * lin[i];
    }
    hidden[i] = v;
}

/*
 * Backward of expert_activation (ExpertNetwork#backward), N*h work-items, each owning its element:
 *   a = pre + bIn;  dA = dHidden * phi'(a) * (gated ? lin : 1);  dB = dHidden * phi(a) (gated only).
 * dA may alias nothing; dB is not written when gated = 0.
 */
KERNEL void expert_activation_backward(GLOBAL const float* RESTRICT pre, GLOBAL const float* RESTRICT lin,
                                       GLOBAL const float* RESTRICT bIn, GLOBAL const int* RESTRICT rowExpert,
                                       GLOBAL const float* RESTRICT dHidden, GLOBAL float* RESTRICT dA,
                                       GLOBAL float* RESTRICT dB,
                                       const int N, const int h, const int kind, const int gated, const int hasBias) {
    int i = GID0;
    if (i >= N * h) return;
    int ex = rowExpert[i / h];
    if (ex < 0) {
        dA[i] = 0.0f;
        if (gated) {
            dB[i] = 0.0f;
        }
        return;
    }
    float a = pre[i];
    if (hasBias) {
        a = bIn[(size_t)ex * h + i % h] + a;
    }
    float g = dHidden[i];
    float da = g * moe_derivative(kind, a);
    if (gated) {
        da = da * lin[i];
        dB[i] = g * moe_activate(kind, a);
    }
    dA[i] = da;
}

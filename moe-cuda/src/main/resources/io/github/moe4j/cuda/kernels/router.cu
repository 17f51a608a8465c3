/*
 * router.cu: token-choice router after the logit GEMM: softmax, top-k and the gates before capacity.
 *
 * Mirrors:  moe-reference  io.github.moe4j.reference.ReferenceLayer#router (softmax, bias, jitter),
 *           ReferenceLayer#route (selection, second-expert policy),
 *           TokenChoiceRouter#gatesBeforeCapacity, TopK#ofRow, Softmax#logSumExp, Softmax#overSubset;
 *           noisy top-k: ReferenceLayer#router (H = z + eps * sigma), NoisyTopKRouter#noiseStd,
 *           NoisyTopKRouter#probInTopK, NoisyTopKRouter#normalCdf;
 *           expert choice: ReferenceLayer#router (s = softmax(z)), Softmax#rows
 * Paper:    Fedus et al. 2021 (Switch) eq. (1)-(2); Lepikhin et al. 2020 (GShard) Algorithm 2;
 *           Shazeer et al. 2017 eq. (3)-(5) and Appendix A eq. (8)-(10) (noisy top-k)
 * Layout:   logits float[T][E] -> probs float[T][E], selected int[T][k], gateBefore float[T][k],
 *           priorityGate float[T][k], ask int[T][k], top1 float[T], lse float[T]  (row-major)
 * Ties:     value descending, then expert index ascending (k passes of argmax; only a strictly
 *           larger logit replaces the current best), as TopK#select
 *
 * Versions:
 *   1  naive port of the reference loops, one work-item per token
 *   2  selection keys apart from the logits (noisy top-k selects on H), noisy keys, prob_in_top_k
 *   3  router_softmax: softmax and lse alone, for expert choice (this file)
 */
#include "moe_portable.h"

/*
 * x_tilde[i] = x[i] * u[i]: Switch's multiplicative input jitter (ReferenceLayer#router, routerInput).
 * n = T*d elements, one work-item each.
 */
KERNEL void multiply_elementwise(GLOBAL const float* RESTRICT x, GLOBAL const float* RESTRICT u,
                                 GLOBAL float* RESTRICT out, const int n) {
    int i = GID0;
    if (i >= n) return;
    out[i] = x[i] * u[i];
}

/*
 * z[r][c] += b[c]: the optional router bias (ReferenceLayer#matmul with bias). rows*cols work-items.
 */
KERNEL void add_row_bias(GLOBAL float* RESTRICT z, GLOBAL const float* RESTRICT b, const int rows, const int cols) {
    int i = GID0;
    if (i >= rows * cols) return;
    z[i] += b[i % cols];
}

/*
 * One work-item per token t (T work-items):
 *   m = max_i z_ti; lse_t = m + log(sum_i exp(z_ti - m)); p_ti = exp(z_ti - lse_t)
 *   S_t = top-k of the keys H_t (ties to the lower index); unrouted tokens (routed[t] == 0) select -1.
 *   H = z for token choice (the same buffer), H = z + eps * sigma for noisy top-k in training
 *   gateBefore: NONE -> p_t,S_j;  RENORMALIZE -> exp(H_S_j - H_S_0) / sum_j' exp(H_S_j' - H_S_0)
 *   priorityGate: p_t,S_j if byProb (NONE, or RENORMALIZE after capacity), else gateBefore
 *   ask[t][j]: 1 if the assignment asks for a slot; GShard's random policy (randomSecond != 0)
 *              keeps rank 1 iff u_t < gateBefore[t][1] / threshold (TokenChoiceRouter#keepsSecondExpert)
 *   status[0]: atomic minimum of the flat index of a non-finite logit (MOE_INT_MAX when none)
 */
KERNEL void router_softmax_topk(GLOBAL const float* RESTRICT logits, GLOBAL const float* RESTRICT keys,
                                GLOBAL const int* RESTRICT routed,
                                GLOBAL const float* RESTRICT uniform,
                                GLOBAL float* RESTRICT probs, GLOBAL int* RESTRICT selected,
                                GLOBAL float* RESTRICT gateBefore, GLOBAL float* RESTRICT priorityGate,
                                GLOBAL int* RESTRICT ask, GLOBAL float* RESTRICT top1, GLOBAL float* RESTRICT lse,
                                GLOBAL int* RESTRICT status,
                                const int T, const int E, const int k, const int renormalize, const int byProb,
                                const int randomSecond, const float threshold) {
    int t = GID0;
    if (t >= T) return;
    const size_t row = (size_t)t * E;
    const size_t out = (size_t)t * k;
    float m = NEG_HUGE;
    for (int i = 0; i < E; i++) {
        float v = logits[row + i];
        if (!IS_FINITE(v)) {
            ATOMIC_MIN_INT(status, (int)(row + i));
            for (int j = 0; j < k; j++) {
                selected[out + j] = -1;
                gateBefore[out + j] = 0.0f;
                priorityGate[out + j] = 0.0f;
                ask[out + j] = 0;
            }
            return;
        }
        m = fmaxf(m, v);
    }
    float sum = 0.0f;
    for (int i = 0; i < E; i++) {
        sum += expf(logits[row + i] - m);
    }
    float l = m + logf(sum);
    lse[t] = l;
    for (int i = 0; i < E; i++) {
        probs[row + i] = expf(logits[row + i] - l);
    }
    if (!routed[t]) {
        for (int j = 0; j < k; j++) {
            selected[out + j] = -1;
            gateBefore[out + j] = 0.0f;
            priorityGate[out + j] = 0.0f;
            ask[out + j] = 0;
        }
        top1[t] = 0.0f;
        return;
    }
    for (int r = 0; r < k; r++) {
        int best = -1;
        for (int i = 0; i < E; i++) {
            int taken = 0;
            for (int q = 0; q < r; q++) {
                taken |= selected[out + q] == i;
            }
            if (!taken && (best < 0 || keys[row + i] > keys[row + best])) {
                best = i;
            }
        }
        selected[out + r] = best;
    }
    if (renormalize) {
        float ms = keys[row + selected[out]];
        float s = 0.0f;
        for (int j = 0; j < k; j++) {
            float g = expf(keys[row + selected[out + j]] - ms);
            gateBefore[out + j] = g;
            s += g;
        }
        for (int j = 0; j < k; j++) {
            gateBefore[out + j] = gateBefore[out + j] / s;
        }
    } else {
        for (int j = 0; j < k; j++) {
            gateBefore[out + j] = probs[row + selected[out + j]];
        }
    }
    for (int j = 0; j < k; j++) {
        priorityGate[out + j] = byProb ? probs[row + selected[out + j]] : gateBefore[out + j];
        ask[out + j] = 1;
    }
    if (randomSecond && k > 1) {
        ask[out + 1] = uniform[t] < gateBefore[out + 1] / threshold;
    }
    top1[t] = probs[row + selected[out]];
}

/* softplus(a) = max(a, 0) + log(1 + exp(-|a|)), without overflow (NoisyTopKRouter#softplus). */
DEVICE_FN float moe_softplus(const float a) {
    return fmaxf(a, 0.0f) + log1pf(expf(-fabsf(a)));
}

/*
 * Noisy top-k keys (ReferenceLayer#router, learned noise in training): sigma = softplus(raw) + eps0,
 * H = z + eps * sigma, one work-item per element (n = T*E).
 */
KERNEL void noisy_keys(GLOBAL const float* RESTRICT logits, GLOBAL const float* RESTRICT raw,
                       GLOBAL const float* RESTRICT noise, GLOBAL float* RESTRICT sigma, GLOBAL float* RESTRICT keys,
                       const int n, const float eps0) {
    int i = GID0;
    if (i >= n) return;
    float s = moe_softplus(raw[i]) + eps0;
    sigma[i] = s;
    keys[i] = logits[i] + noise[i] * s;
}

/*
 * The smooth load's P(t, i) (NoisyTopKRouter#probInTopK, t2t _prob_in_top_k), k < E, one work-item
 * per token: with the top-k S_t already selected (best first) and o = the best of the rest (the
 * (k+1)-th, ties to the lower index), thrIn = H_o, thrOut = H_S_(k-1);
 * P(t, i) = 0.5 (1 + erf((z_i - thr_i) / (sqrt(2) sigma_i + 1e-20))), thr_i = thrIn if H_i > thrIn else thrOut.
 * kPlus1[t] = o. An unrouted token writes zeros and o = -1.
 */
KERNEL void prob_in_top_k(GLOBAL const float* RESTRICT logits, GLOBAL const float* RESTRICT keys,
                          GLOBAL const float* RESTRICT sigma, GLOBAL const int* RESTRICT selected,
                          GLOBAL float* RESTRICT prob, GLOBAL int* RESTRICT kPlus1,
                          const int T, const int E, const int k) {
    int t = GID0;
    if (t >= T) return;
    const size_t row = (size_t)t * E;
    const size_t out = (size_t)t * k;
    if (selected[out] < 0) {
        for (int i = 0; i < E; i++) {
            prob[row + i] = 0.0f;
        }
        kPlus1[t] = -1;
        return;
    }
    int best = -1;
    for (int i = 0; i < E; i++) {
        int taken = 0;
        for (int q = 0; q < k; q++) {
            taken |= selected[out + q] == i;
        }
        if (!taken && (best < 0 || keys[row + i] > keys[row + best])) {
            best = i;
        }
    }
    kPlus1[t] = best;
    float thrIn = keys[row + best];
    float thrOut = keys[row + selected[out + k - 1]];
    for (int i = 0; i < E; i++) {
        float thr = keys[row + i] > thrIn ? thrIn : thrOut;
        prob[row + i] = 0.5f * (1.0f + erff((logits[row + i] - thr) / (1.41421356237309505f * sigma[row + i] + 1e-20f)));
    }
}

/*
 * Expert choice's router (ReferenceLayer#router, Softmax#rows), one work-item per token t:
 * lse_t = m + log(sum_i exp(z_ti - m)), s_ti = exp(z_ti - lse_t), exactly as router_softmax_topk
 * computes them. status[0]: atomic minimum of the flat index of a non-finite logit.
 */
KERNEL void router_softmax(GLOBAL const float* RESTRICT logits, GLOBAL float* RESTRICT probs, GLOBAL float* RESTRICT lse,
                           GLOBAL int* RESTRICT status, const int T, const int E) {
    int t = GID0;
    if (t >= T) return;
    const size_t row = (size_t)t * E;
    float m = NEG_HUGE;
    for (int i = 0; i < E; i++) {
        float v = logits[row + i];
        if (!IS_FINITE(v)) {
            ATOMIC_MIN_INT(status, (int)(row + i));
            return;
        }
        m = fmaxf(m, v);
    }
    float sum = 0.0f;
    for (int i = 0; i < E; i++) {
        sum += expf(logits[row + i] - m);
    }
    float l = m + logf(sum);
    lse[t] = l;
    for (int i = 0; i < E; i++) {
        probs[row + i] = expf(logits[row + i] - l);
    }
}

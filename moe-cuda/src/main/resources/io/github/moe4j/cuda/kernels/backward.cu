/*
 * backward.cu: the router's backward pass from dL/dg (the combine weights) and the weighted losses
 * to dL/dz (the router logits), and the column sums that give the bias gradients.
 *
 * Mirrors:  moe-reference  io.github.moe4j.reference.ReferenceLayer#routingBackward (token choice),
 *           TokenChoiceRouter#gatesAfterCapacityBackward, Softmax#softmaxBackward,
 *           Softmax#overSubsetBackward, LoadBalancingLoss#backward, RouterZLoss#backward
 *           (Softmax#logSumExpBackward); the bias sums of ExpertNetwork#backward and
 *           ReferenceLayer#routerBackward
 *           noisy top-k: ReferenceLayer#routingBackward (noisy branches), ImportanceLoss#importanceBackward,
 *           LoadLoss#smoothLoadBackward, NoisyTopKRouter#probInTopKBackward, NoisyTopKRouter#normalCdfDv,
 *           NoisyTopKRouter#normalCdfDsigma, NoisyTopKRouter#noiseStdBackward (the host takes
 *           CoefficientOfVariation#squaredBackward of the [G][E] importance and load)
 * Paper:    Fedus et al. 2021 (Switch) eq. (4)-(6); Zoph et al. 2022 (ST-MoE) eq. (5);
 *           Shazeer et al. 2017 eq. (3)-(7) and Appendix A eq. (8)-(11); research moe-semantics 3.5
 * Layout:   probs float[T][E], lse float[T], selected, slot int[T][k], gateBefore, gate, dGate float[T][k],
 *           real int[T], auxScale, zScale float[G], stats float[G][E][2] (f at 0) -> dLogits float[T][E]
 *           (dProbs float[T][E] is scratch, each row owned by its token's work-item)
 * Gates:    0 NONE, 1 RENORMALIZE before capacity, 2 RENORMALIZE after capacity
 * Rule:     selection, slots, drops and f are constants (SPEC section 10); every output element is
 *           owned by one work-item, which sums in a fixed order: no atomics, deterministic.
 *
 * Versions:
 *   1  naive: one work-item per token row, then one per output column of a segment
 *   2  softmax backwards as p_i sum_(j != i) p_j (dP_i - dP_j), no cancellation
 *   3  a token is routed if any choice has an expert (expert choice: choices = experts, gates = s
 *      like NONE); noisy_router_backward (this file)
 */
#include "moe_portable.h"

/*
 * dP_i for token t: the aux loss's auxScale[g] * f_i on a real token (LoadBalancingLoss#backward, with
 * auxScale = c_aux / G * E / n_real(g)), plus, for NONE gates, dGate of each kept choice of expert i
 * (TokenChoiceRouter#gatesAfterCapacityBackward).
 */
DEVICE_FN float moe_dprob(GLOBAL const int* RESTRICT selected, GLOBAL const int* RESTRICT slot,
                          GLOBAL const float* RESTRICT dGate, GLOBAL const float* RESTRICT stats,
                          const float aux, const int isReal, const int noneGates,
                          const size_t tk, const int k, const size_t ge, const int i) {
    float v = isReal ? aux * stats[2 * (ge + i)] : 0.0f;
    if (noneGates) {
        for (int j = 0; j < k; j++) {
            if (selected[tk + j] == i && slot[tk + j] >= 0) {
                v += dGate[tk + j];
            }
        }
    }
    return v;
}

/*
 * One work-item per token t (T work-items) writes the rows dProbs[t][.] (its scratch) and dLogits[t][.]:
 *   z-loss:   zScale[g] * lse_t * p_ti on a real token (zScale = c_z / G * 2 / n_real(g))
 *   gates:    RENORMALIZE before: the softmax-over-subset backward of the selected logits with
 *             dBefore_j = kept ? dGate_j : 0;  after: the same over the kept logits with the
 *             combine weights;  NONE: through dP (moe_dprob)
 *   softmax:  p_ti (dP_i - sum_j p_tj dP_j)
 * Both softmax backwards are evaluated as p_i sum_(j != i) p_j (dP_i - dP_j) (the same value, since
 * the p_j sum to 1), which keeps its relative accuracy when p_i is close to 1, where
 * dP_i - sum_j p_j dP_j would cancel.
 */
KERNEL void router_backward(GLOBAL const float* RESTRICT probs, GLOBAL const float* RESTRICT lse,
                            GLOBAL const int* RESTRICT selected, GLOBAL const int* RESTRICT slot,
                            GLOBAL const float* RESTRICT gateBefore, GLOBAL const float* RESTRICT gate,
                            GLOBAL const float* RESTRICT dGate, GLOBAL const int* RESTRICT real,
                            GLOBAL const float* RESTRICT auxScale, GLOBAL const float* RESTRICT zScale,
                            GLOBAL const float* RESTRICT stats, GLOBAL float* RESTRICT dProbs, GLOBAL float* RESTRICT dLogits,
                            const int T, const int E, const int k, const int gs, const int gates) {
    int t = GID0;
    if (t >= T) return;
    const int g = t / gs;
    const size_t row = (size_t)t * E;
    const size_t tk = (size_t)t * k;
    const size_t ge = (size_t)g * E;
    const int isReal = real[t];
    int routed = 0;
    for (int j = 0; j < k; j++) {
        routed |= selected[tk + j] >= 0;
    }
    const float aux = auxScale[g];
    const int noneGates = gates == 0 && routed;
    for (int i = 0; i < E; i++) {
        dProbs[row + i] = moe_dprob(selected, slot, dGate, stats, aux, isReal, noneGates, tk, k, ge, i);
    }
    const float zc = isReal ? zScale[g] * lse[t] : 0.0f;
    for (int i = 0; i < E; i++) {
        float p = probs[row + i];
        float acc = zc * p;
        if (routed && gates != 0) {
            for (int j = 0; j < k; j++) {
                if (selected[tk + j] != i) continue;
                int kept = slot[tk + j] >= 0;
                if (gates == 2 && !kept) continue;
                float gj = gates == 1 ? gateBefore[tk + j] : gate[tk + j];
                float dj = kept ? dGate[tk + j] : 0.0f;
                float sub = 0.0f;
                for (int m = 0; m < k; m++) {
                    if (m == j) continue;
                    int keptM = slot[tk + m] >= 0;
                    if (gates == 2 && !keptM) continue;
                    float gm = gates == 1 ? gateBefore[tk + m] : gate[tk + m];
                    sub += gm * (dj - (keptM ? dGate[tk + m] : 0.0f));
                }
                acc += gj * sub;
            }
        }
        float dpi = dProbs[row + i];
        float soft = 0.0f;
        for (int j = 0; j < E; j++) {
            if (j == i) continue;
            soft += probs[row + j] * (dpi - dProbs[row + j]);
        }
        dLogits[row + i] = acc + p * soft;
    }
}

/*
 * dst[s][c] = sum over rows r in [start[s], start[s+1]) of src[r][c], rows in increasing order:
 * nSeg*width work-items. Bias gradients: per expert over its dispatched rows (dbIn, dbOut), or one
 * segment over all tokens (the router bias).
 */
KERNEL void segment_column_sums(GLOBAL const float* RESTRICT src, GLOBAL const int* RESTRICT start,
                                GLOBAL float* RESTRICT dst, const int nSeg, const int width) {
    int i = GID0;
    if (i >= nSeg * width) return;
    int sg = i / width;
    int c = i % width;
    float acc = 0.0f;
    for (int r = start[sg]; r < start[sg + 1]; r++) {
        acc += src[(size_t)r * width + c];
    }
    dst[i] = acc;
}

/*
 * Noisy top-k: one work-item per token t (T work-items) writes the rows dKeys[t][.] (scratch),
 * dLogits[t][.] and, with learned noise in training (learned != 0), dRaw[t][.] = dL/d(x W_noise):
 *   z-loss:     zScale[g] * lse_t * p_ti on a real token (zScale = c_z / G * 2 / n_real(g))
 *   gates:      dB_j = (kept ? dGate_j : 0) + (real ? dImportance[g][S_j] : 0) (ImportanceLoss#importanceBackward,
 *               dImportance = c_imp / G * dcv^2/dImportance from the host); the softmax over the
 *               selected H backwards into dKeys[S_j] += g_j sum_(m != j) g_m (dB_j - dB_m)
 *   smooth load (smooth != 0, real token): dP_i = dLoad[g][i]; thr = H_o (o = kPlus1[t]) if H_i > H_o,
 *               else H_S_(k-1); v = z_i - thr, s = sqrt(2) sigma_i + 1e-20, w = v / s:
 *               dV = dP_i exp(-w^2) / (sqrt(pi) s) goes to dLogits_i and -dV to dKeys of the threshold's
 *               expert; dSigma_i += dP_i (-exp(-w^2) / sqrt(pi) * v sqrt(2) / s^2)
 *   H = z + eps sigma: dLogits_i += dKeys_i; learned: dSigma_i += eps_i dKeys_i and
 *               dRaw_i = sigmoid(raw_i) dSigma_i (softplus'); otherwise H = z
 * dRaw holds dSigma until the last loop. Every row is owned by its token's work-item: no atomics.
 */
KERNEL void noisy_router_backward(GLOBAL const float* RESTRICT probs, GLOBAL const float* RESTRICT lse,
                                  GLOBAL const float* RESTRICT logits, GLOBAL const float* RESTRICT keys,
                                  GLOBAL const float* RESTRICT sigma, GLOBAL const float* RESTRICT noise,
                                  GLOBAL const float* RESTRICT raw, GLOBAL const int* RESTRICT selected,
                                  GLOBAL const int* RESTRICT slot, GLOBAL const float* RESTRICT gateBefore,
                                  GLOBAL const float* RESTRICT dGate, GLOBAL const int* RESTRICT kPlus1,
                                  GLOBAL const int* RESTRICT real, GLOBAL const float* RESTRICT zScale,
                                  GLOBAL const float* RESTRICT dImportance, GLOBAL const float* RESTRICT dLoad,
                                  GLOBAL float* RESTRICT dKeys, GLOBAL float* RESTRICT dLogits, GLOBAL float* RESTRICT dRaw,
                                  const int T, const int E, const int k, const int gs, const int learned, const int smooth) {
    int t = GID0;
    if (t >= T) return;
    const int g = t / gs;
    const size_t row = (size_t)t * E;
    const size_t tk = (size_t)t * k;
    const size_t ge = (size_t)g * E;
    const int isReal = real[t];
    const int routed = selected[tk] >= 0;
    const float zc = isReal ? zScale[g] * lse[t] : 0.0f;
    for (int i = 0; i < E; i++) {
        dKeys[row + i] = 0.0f;
        dLogits[row + i] = zc * probs[row + i];
        if (learned) {
            dRaw[row + i] = 0.0f;
        }
    }
    if (routed) {
        for (int j = 0; j < k; j++) {
            int sj = selected[tk + j];
            float dj = (slot[tk + j] >= 0 ? dGate[tk + j] : 0.0f) + (isReal ? dImportance[ge + sj] : 0.0f);
            float sub = 0.0f;
            for (int m = 0; m < k; m++) {
                if (m == j) continue;
                float dm = (slot[tk + m] >= 0 ? dGate[tk + m] : 0.0f) + (isReal ? dImportance[ge + selected[tk + m]] : 0.0f);
                sub += gateBefore[tk + m] * (dj - dm);
            }
            dKeys[row + sj] += gateBefore[tk + j] * sub;
        }
    }
    if (smooth && isReal && kPlus1[t] >= 0) {
        const int o = kPlus1[t];
        const float thrIn = keys[row + o];
        const int last = selected[tk + k - 1];
        for (int i = 0; i < E; i++) {
            int thrE = keys[row + i] > thrIn ? o : last;
            float v = logits[row + i] - keys[row + thrE];
            float s = 1.41421356237309505f * sigma[row + i] + 1e-20f;
            float w = v / s;
            float ex = expf(-w * w);
            float dP = dLoad[ge + i];
            float dV = dP * (ex / (1.77245385090551603f * s));
            dLogits[row + i] += dV;
            dKeys[row + thrE] -= dV;
            dRaw[row + i] += dP * (-ex / 1.77245385090551603f * v * 1.41421356237309505f / (s * s));
        }
    }
    for (int i = 0; i < E; i++) {
        float dk = dKeys[row + i];
        dLogits[row + i] += dk;
        if (learned) {
            float a = raw[row + i];
            float sig = a >= 0.0f ? 1.0f / (1.0f + expf(-a)) : expf(a) / (1.0f + expf(a));
            float dSigma = dRaw[row + i] + noise[row + i] * dk;
            dRaw[row + i] = sig * dSigma;
        }
    }
}

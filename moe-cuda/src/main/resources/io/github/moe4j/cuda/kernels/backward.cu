/*
 * backward.cu: the router's backward pass from dL/dg (the combine weights) and the weighted losses
 * to dL/dz (the router logits), and the column sums that give the bias gradients.
 *
 * Mirrors:  moe-reference  io.github.moe4j.reference.ReferenceLayer#routingBackward (token choice),
 *           TokenChoiceRouter#gatesAfterCapacityBackward, Softmax#softmaxBackward,
 *           Softmax#overSubsetBackward, LoadBalancingLoss#backward, RouterZLoss#backward
 *           (Softmax#logSumExpBackward); the bias sums of ExpertNetwork#backward and
 *           ReferenceLayer#routerBackward
 * Paper:    Fedus et al. 2021 (Switch) eq. (4)-(6); Zoph et al. 2022 (ST-MoE) eq. (5)
 * Layout:   probs float[T][E], lse float[T], selected, slot int[T][k], gateBefore, gate, dGate float[T][k],
 *           real int[T], auxScale, zScale float[G], stats float[G][E][2] (f at 0) -> dLogits float[T][E]
 *           (dProbs float[T][E] is scratch, each row owned by its token's work-item)
 * Gates:    0 NONE, 1 RENORMALIZE before capacity, 2 RENORMALIZE after capacity
 * Rule:     selection, slots, drops and f are constants (SPEC section 10); every output element is
 *           owned by one work-item, which sums in a fixed order: no atomics, deterministic.
 *
 * Versions:
 *   1  naive: one work-item per token row, then one per output column of a segment
 *   2  softmax backwards as p_i sum_(j != i) p_j (dP_i - dP_j), no cancellation (this file)
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
    const int routed = selected[tk] >= 0;
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

/*
 * losses.cu: the load-balancing (aux) and router z-losses of each routing group, unweighted.
 *
 * Mirrors:  moe-reference  io.github.moe4j.reference.LoadBalancingLoss#dispatchFraction,
 *           LoadBalancingLoss#meanProbability, LoadBalancingLoss#value, RouterZLoss#value,
 *           ReferenceLayer#losses (per group over its real tokens; the host averages over groups);
 *           noisy top-k: ImportanceLoss#importance, LoadLoss#smoothLoad, LoadLoss#countLoad (the host
 *           takes CoefficientOfVariation#squared of the [G][E] vectors)
 * Paper:    Fedus et al. 2021 (Switch) eq. (4)-(6); Zoph et al. 2022 (ST-MoE) eq. (5)
 * Layout:   selected int[T][k], probs float[T][E], lse float[T], real int[T]
 *           -> stats float[G][E][2] (f, P), aux float[G], z float[G]
 * f:        0 TOP1 (first choices), 1 TOPK_NORMALIZED (all k, divided by k), 2 TOPK_COUNT (all k)
 *
 * Versions:
 *   1  naive: per (group, expert) then per group, sums in increasing token and expert order
 *   2  noisy top-k importance and load (this file)
 */
#include "moe_portable.h"

/* One work-item per (group, expert): f_e and P_e over the group's real tokens. */
KERNEL void loss_expert_stats(GLOBAL const int* RESTRICT selected, GLOBAL const float* RESTRICT probs,
                              GLOBAL const int* RESTRICT real, GLOBAL float* RESTRICT stats,
                              const int T, const int E, const int k, const int G, const int normalization) {
    int id = GID0;
    if (id >= G * E) return;
    int g = id / E;
    int e = id % E;
    int gs = T / G;
    int ranks = normalization == 0 ? 1 : k;
    int n = 0;
    int count = 0;
    float p = 0.0f;
    for (int t = g * gs; t < (g + 1) * gs; t++) {
        if (!real[t]) continue;
        n++;
        for (int r = 0; r < ranks; r++) {
            count += selected[(size_t)t * k + r] == e ? 1 : 0;
        }
        p += probs[(size_t)t * E + e];
    }
    float f = 0.0f;
    float meanP = 0.0f;
    if (n > 0) {
        f = normalization == 1 ? (float)count / (float)(k * n) : (float)count / (float)n;
        meanP = p / (float)n;
    }
    stats[2 * (size_t)id] = f;
    stats[2 * (size_t)id + 1] = meanP;
}

/* One work-item per group: aux_g = E * sum_e f_e P_e and z_g = mean over real tokens of lse^2. */
KERNEL void loss_group_totals(GLOBAL const float* RESTRICT stats, GLOBAL const float* RESTRICT lse,
                              GLOBAL const int* RESTRICT real, GLOBAL float* RESTRICT aux, GLOBAL float* RESTRICT z,
                              const int T, const int E, const int G) {
    int g = GID0;
    if (g >= G) return;
    int gs = T / G;
    float s = 0.0f;
    for (int e = 0; e < E; e++) {
        size_t id = (size_t)g * E + e;
        s += stats[2 * id] * stats[2 * id + 1];
    }
    aux[g] = (float)E * s;
    int n = 0;
    float zs = 0.0f;
    for (int t = g * gs; t < (g + 1) * gs; t++) {
        if (!real[t]) continue;
        n++;
        zs += lse[t] * lse[t];
    }
    z[g] = n > 0 ? zs / (float)n : 0.0f;
}

/*
 * Noisy top-k, one work-item per (group, expert) over the group's real tokens, tokens ascending:
 * importance[g][e] = sum of gateBefore of the choices of e; load[g][e] = sum of P(t, e) when
 * smooth != 0, else the number of choices of e.
 */
KERNEL void noisy_loss_stats(GLOBAL const int* RESTRICT selected, GLOBAL const float* RESTRICT gateBefore,
                             GLOBAL const float* RESTRICT prob, GLOBAL const int* RESTRICT real,
                             GLOBAL float* RESTRICT importance, GLOBAL float* RESTRICT load,
                             const int T, const int E, const int k, const int G, const int smooth) {
    int id = GID0;
    if (id >= G * E) return;
    int g = id / E;
    int e = id % E;
    int gs = T / G;
    float imp = 0.0f;
    float ld = 0.0f;
    for (int t = g * gs; t < (g + 1) * gs; t++) {
        if (!real[t]) continue;
        for (int r = 0; r < k; r++) {
            if (selected[(size_t)t * k + r] == e) {
                imp += gateBefore[(size_t)t * k + r];
                if (!smooth) ld += 1.0f;
            }
        }
        if (smooth) ld += prob[(size_t)t * E + e];
    }
    importance[id] = imp;
    load[id] = ld;
}

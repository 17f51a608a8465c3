/*
 * capacity.cu: capacity slots in priority order, the gates after capacity, and each kept
 * assignment's row in the dispatch buffer.
 *
 * Mirrors:  moe-reference  io.github.moe4j.reference.CapacityAssigner#assign (slots),
 *           ReferenceLayer#assignTokenChoice (per group, load and kept counts),
 *           TokenChoiceRouter#gatesAfterCapacity (gates), ReferenceLayer#dispatch (row order);
 *           expert choice: ExpertChoiceRouter#tokensFor, ReferenceLayer#routeExpertChoice
 * Paper (expert choice): Zhou et al. 2022, Section 3.1, eq. (1)
 * Paper:    Lepikhin et al. 2020 (GShard) Algorithm 2; Riquelme et al. 2021 (V-MoE) Sec. 4.1 (BPR)
 * Layout:   selected, ask, slot, rowOf int[T][k]; loadGE, keptGE, rowBase int[G][E]
 * Priority: 0 RANK_MAJOR (rank, token), 1 TOKEN_MAJOR (token, rank),
 *           2 BATCH_PRIORITIZED (rank, top-1 probability descending, token),
 *           3 GATE_VALUE per expert (gate descending, token, rank), kept ones numbered in (token, rank) order
 *
 * Versions:
 *   1  one work-item per (group, expert) scanning the group sequentially in priority order
 *   2  expert_choice_select (this file)
 */
#include "moe_portable.h"

/* a[i] = v for i < n. */
KERNEL void fill_int(GLOBAL int* RESTRICT a, const int v, const int n) {
    int i = GID0;
    if (i >= n) return;
    a[i] = v;
}

/*
 * Batch-prioritised order of each group's tokens: order[g*gs + pos] = t, where pos counts the tokens
 * u of t's group with top1[u] > top1[t], or equal and u < t (top-1 probability descending, token
 * ascending). One work-item per token; O(gs) each, no atomics, deterministic.
 */
KERNEL void bpr_token_order(GLOBAL const float* RESTRICT top1, GLOBAL int* RESTRICT order, const int T, const int gs) {
    int t = GID0;
    if (t >= T) return;
    int g0 = (t / gs) * gs;
    float mine = top1[t];
    int pos = 0;
    for (int u = g0; u < g0 + gs; u++) {
        float other = top1[u];
        pos += (other > mine || (other == mine && u < t)) ? 1 : 0;
    }
    order[g0 + pos] = t;
}

/* Whether assignment b = (tb, rb) comes before a = (ta, ra) in GATE_VALUE order. */
DEVICE_FN int gate_value_before(float gb, int tb, int rb, float ga, int ta, int ra) {
    if (gb != ga) return gb > ga;
    if (tb != ta) return tb < ta;
    return rb < ra;
}

/*
 * One work-item per (group g, expert e): G*E work-items. slot must hold -1 everywhere beforehand
 * (fill_int). Writes slot[a] for the assignments of expert e in group g that ask for one, and
 * loadGE[g][e] (assignments choosing e, before capacity and the second-expert policy) and
 * keptGE[g][e] (assignments kept).
 */
KERNEL void assign_slots(GLOBAL const int* RESTRICT selected, GLOBAL const int* RESTRICT ask,
                         GLOBAL const float* RESTRICT priorityGate, GLOBAL const int* RESTRICT bprOrder,
                         GLOBAL int* RESTRICT slot, GLOBAL int* RESTRICT loadGE, GLOBAL int* RESTRICT keptGE,
                         const int T, const int E, const int k, const int G, const int capacity, const int priority) {
    int id = GID0;
    if (id >= G * E) return;
    int g = id / E;
    int e = id % E;
    int gs = T / G;
    int t0 = g * gs;
    int load = 0;
    for (int t = t0; t < t0 + gs; t++) {
        for (int r = 0; r < k; r++) {
            load += selected[(size_t)t * k + r] == e ? 1 : 0;
        }
    }
    int n = 0;
    if (priority == 0 || priority == 2) {
        for (int r = 0; r < k; r++) {
            for (int i = 0; i < gs; i++) {
                int t = priority == 0 ? t0 + i : bprOrder[t0 + i];
                size_t a = (size_t)t * k + r;
                if (selected[a] == e && ask[a]) {
                    slot[a] = n < capacity ? n : -1;
                    n++;
                }
            }
        }
    } else if (priority == 1) {
        for (int t = t0; t < t0 + gs; t++) {
            for (int r = 0; r < k; r++) {
                size_t a = (size_t)t * k + r;
                if (selected[a] == e && ask[a]) {
                    slot[a] = n < capacity ? n : -1;
                    n++;
                }
            }
        }
    } else {
        for (int t = t0; t < t0 + gs; t++) {
            for (int r = 0; r < k; r++) {
                size_t a = (size_t)t * k + r;
                if (selected[a] != e || !ask[a]) continue;
                float ga = priorityGate[a];
                int pos = 0;
                for (int tb = t0; tb < t0 + gs; tb++) {
                    for (int rb = 0; rb < k; rb++) {
                        size_t b = (size_t)tb * k + rb;
                        if (selected[b] == e && ask[b] && gate_value_before(priorityGate[b], tb, rb, ga, t, r)) {
                            pos++;
                        }
                    }
                }
                slot[a] = pos < capacity ? n++ : -1;
            }
        }
    }
    loadGE[id] = load;
    keptGE[id] = priority == 3 ? n : (n < capacity ? n : capacity);
}

/*
 * One work-item per token: the combine weights once dropping is known (TokenChoiceRouter#gatesAfterCapacity).
 * A dropped choice's gate is 0; with renormalisation after capacity (afterCapacity != 0) the kept
 * choices are a softmax over their logits, and a token with nothing kept gets zeros.
 */
KERNEL void gates_after_capacity(GLOBAL const float* RESTRICT logits, GLOBAL const int* RESTRICT selected,
                                 GLOBAL const float* RESTRICT gateBefore, GLOBAL const int* RESTRICT slot,
                                 GLOBAL float* RESTRICT gate, const int T, const int E, const int k,
                                 const int afterCapacity) {
    int t = GID0;
    if (t >= T) return;
    const size_t row = (size_t)t * E;
    const size_t out = (size_t)t * k;
    if (!afterCapacity) {
        for (int j = 0; j < k; j++) {
            gate[out + j] = slot[out + j] >= 0 ? gateBefore[out + j] : 0.0f;
        }
        return;
    }
    float m = NEG_HUGE;
    int any = 0;
    for (int j = 0; j < k; j++) {
        if (slot[out + j] >= 0) {
            m = fmaxf(m, logits[row + selected[out + j]]);
            any = 1;
        }
    }
    float s = 0.0f;
    for (int j = 0; j < k; j++) {
        float g = 0.0f;
        if (slot[out + j] >= 0) {
            g = expf(logits[row + selected[out + j]] - m);
            s += g;
        }
        gate[out + j] = g;
    }
    for (int j = 0; j < k; j++) {
        gate[out + j] = any ? gate[out + j] / s : 0.0f;
    }
}

/*
 * One work-item per assignment a = (t, j): its row in the dispatch buffer, -1 if not kept.
 * Rows are grouped by expert, then (group, slot), as ReferenceLayer#dispatch orders them:
 * row = rowBase[g][e] + slot. Also records which expert and which assignment each row belongs to.
 */
KERNEL void dispatch_rows(GLOBAL const int* RESTRICT selected, GLOBAL const int* RESTRICT slot,
                          GLOBAL const int* RESTRICT rowBase, GLOBAL int* RESTRICT rowOf,
                          GLOBAL int* RESTRICT rowExpert, GLOBAL int* RESTRICT rowAssignment,
                          const int T, const int E, const int k, const int gs) {
    int a = GID0;
    if (a >= T * k) return;
    int s = slot[a];
    if (s < 0) {
        rowOf[a] = -1;
        return;
    }
    int e = selected[a];
    int g = (a / k) / gs;
    int row = rowBase[g * E + e] + s;
    rowOf[a] = row;
    rowExpert[row] = e;
    rowAssignment[row] = a;
}

/*
 * Expert choice (ExpertChoiceRouter#tokensFor, ReferenceLayer#routeExpertChoice), one work-item per
 * (group g, expert e): G*E work-items. Among the group's routed tokens, expert e takes the C with the
 * largest s_te (probs), ties to the lower token index; the token of rank c gets slot c. The work-item
 * owns column e of its group's rows of the [T][E] buffers: selected = e or -1, slot = rank or -1,
 * gate = s_te or 0. loadGE[g][e] = keptGE[g][e] = the number of tokens taken, min(C, routed tokens).
 * O(gs^2) per work-item; no atomics.
 */
KERNEL void expert_choice_select(GLOBAL const float* RESTRICT probs, GLOBAL const int* RESTRICT routed,
                                 GLOBAL int* RESTRICT selected, GLOBAL int* RESTRICT slot, GLOBAL float* RESTRICT gate,
                                 GLOBAL int* RESTRICT loadGE, GLOBAL int* RESTRICT keptGE,
                                 const int T, const int E, const int G, const int capacity) {
    int id = GID0;
    if (id >= G * E) return;
    int g = id / E;
    int e = id % E;
    int gs = T / G;
    int t0 = g * gs;
    int n = 0;
    for (int t = t0; t < t0 + gs; t++) {
        size_t a = (size_t)t * E + e;
        int pos = capacity;
        float mine = probs[a];
        if (routed[t]) {
            pos = 0;
            for (int u = t0; u < t0 + gs; u++) {
                if (!routed[u]) continue;
                float other = probs[(size_t)u * E + e];
                pos += (other > mine || (other == mine && u < t)) ? 1 : 0;
            }
        }
        if (pos < capacity) {
            selected[a] = e;
            slot[a] = pos;
            gate[a] = mine;
            n++;
        } else {
            selected[a] = -1;
            slot[a] = -1;
            gate[a] = 0.0f;
        }
    }
    loadGE[id] = n;
    keptGE[id] = n;
}

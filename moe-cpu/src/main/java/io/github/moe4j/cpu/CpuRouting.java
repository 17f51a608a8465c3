package io.github.moe4j.cpu;

import io.github.moe4j.api.Routing;

/**
 * The routing of one call as {@link CpuRouter} decided it (SPEC §3, §4, §4a, §7): per (token,
 * choice) the expert, its capacity slot and its gate in double, before the gates are rounded to
 * float for {@link Routing}. Arrays are [T, m] row-major with m choices per token (k, or E for
 * expert choice, entry e being expert e); owned by this object, do not modify.
 *
 * @param tokens             T
 * @param experts            E
 * @param choices            m
 * @param groups             G
 * @param capacity           C per expert and group, or {@link Routing#UNLIMITED}
 * @param selected           the expert of each choice, best first; -1 where there is none
 * @param gateBeforeCapacity the gate before any assignment is dropped (NONE: p; RENORMALIZE and noisy
 *                           top-k: the softmax over the selected keys)
 * @param slot               the capacity slot, -1 where dropped or absent
 * @param gate               the combine weight, 0 where dropped or absent
 * @param load               [E] assignments chosen before capacity, summed over groups
 * @param kept               [E] assignments kept, summed over groups
 */
record CpuRouting(int tokens, int experts, int choices, int groups, int capacity, int[] selected,
                  double[] gateBeforeCapacity, int[] slot, double[] gate, int[] load, int[] kept) {

    /** Whether choice j of token t was kept (has a slot). */
    boolean isKept(int t, int j) {
        return slot[t * choices + j] >= 0;
    }

    /** The API form: the same decisions, the gates rounded to float. */
    Routing toRouting() {
        float[] rounded = new float[gate.length];
        for (int i = 0; i < gate.length; i++) {
            rounded[i] = (float) gate[i];
        }
        return new Routing(tokens, experts, choices, groups, capacity, selected, rounded, slot, load, kept);
    }
}

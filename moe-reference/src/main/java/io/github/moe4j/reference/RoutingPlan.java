package io.github.moe4j.reference;

import io.github.moe4j.api.Routing;

/**
 * The reference's routing decision in double precision: {@link Routing} before its gates are
 * rounded, plus the selection and gates as they were before capacity. Arrays are [T, m] with m
 * choices per token (k, or E for expert choice), row-major; owned by this object, do not modify.
 *
 * @param tokens             T
 * @param experts            E
 * @param choices            m
 * @param groups             G
 * @param capacity           C per expert and group, or {@link Routing#UNLIMITED}
 * @param selected           the expert of each choice, -1 where there is none
 * @param gateBeforeCapacity the gate before dropping (RENORMALIZE: over all selected; NONE: p)
 * @param slot               capacity slot, -1 where dropped or absent
 * @param gate               the combine weight, 0 where dropped or absent
 * @param load               [E] assignments chosen before capacity
 * @param kept               [E] assignments kept
 */
public record RoutingPlan(int tokens, int experts, int choices, int groups, int capacity, int[] selected,
                          double[] gateBeforeCapacity, int[] slot, double[] gate, int[] load, int[] kept) {

    /** Whether choice j of token t was kept. */
    public boolean isKept(int t, int j) {
        return slot[t * choices + j] >= 0;
    }

    /** The API form, gates rounded to float. */
    public Routing toRouting() {
        float[] g = new float[gate.length];
        for (int i = 0; i < g.length; i++) {
            g[i] = (float) gate[i];
        }
        return new Routing(tokens, experts, choices, groups, capacity, selected, g, slot, load, kept);
    }
}

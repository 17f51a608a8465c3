package io.github.moe4j.api;

import java.util.Arrays;

/**
 * The routing decision of one call: for every (token, choice), the expert, the gate and the
 * capacity slot; per expert, how many assignments were asked for and how many were kept.
 *
 * <p>Choices: for token-choice routers a token has k choices in rank order (best first; ties to
 * the lower expert index). For expert choice it has E entries, entry e being expert e, with
 * expert {@code -1} where expert e did not take the token. A token that was not routed at all
 * (padding under {@link PaddingPolicy#NOT_ROUTED}) has expert {@code -1} everywhere.
 *
 * <p>Slots: the position of a kept assignment in its expert's capacity buffer of its group; -1
 * when the assignment was dropped (capacity, or GShard's random second-expert policy). The slot is
 * the assignment's position among the expert's kept assignments of the group in {@link Priority}
 * order, except for {@link Priority#GATE_VALUE}, which numbers the kept assignments in token order
 * (DeepSpeed's {@code cumsum} over the kept mask). With dropless capacity every assignment is kept.
 * The gate of a dropped assignment is 0.
 *
 * <p>Immutable: arrays are copied in and out.
 */
public final class Routing {
    /** The capacity reported when nothing can be dropped. */
    public static final int UNLIMITED = Integer.MAX_VALUE;

    private final int tokens;
    private final int experts;
    private final int choices;
    private final int groups;
    private final int capacity;
    private final int[] expert;
    private final float[] gate;
    private final int[] slot;
    private final int[] load;
    private final int[] kept;

    /**
     * @param tokens   T
     * @param experts  E
     * @param choices  entries per token: k, or E for expert choice
     * @param groups   G
     * @param capacity C per expert and group, or {@link #UNLIMITED}
     * @param expert   [T, choices] expert index or -1
     * @param gate     [T, choices] the combine weight (0 where dropped or absent)
     * @param slot     [T, choices] capacity slot or -1
     * @param load     [E] assignments each expert was chosen for, before capacity, summed over groups
     * @param kept     [E] assignments each expert kept, summed over groups
     */
    public Routing(int tokens, int experts, int choices, int groups, int capacity, int[] expert, float[] gate,
                   int[] slot, int[] load, int[] kept) {
        this.tokens = Checks.requireNonNegative(tokens, "tokens");
        this.experts = Checks.requirePositive(experts, "experts");
        this.choices = Checks.requirePositive(choices, "choices");
        this.groups = Checks.requirePositive(groups, "groups");
        this.capacity = Checks.requireNonNegative(capacity, "capacity");
        this.expert = requireLength(expert, tokens * choices, "expert").clone();
        this.gate = requireLength(gate, tokens * choices, "gate").clone();
        this.slot = requireLength(slot, tokens * choices, "slot").clone();
        this.load = requireLength(load, experts, "load").clone();
        this.kept = requireLength(kept, experts, "kept").clone();
    }

    private static int[] requireLength(int[] a, int n, String name) {
        Checks.requireNonNull(a, name);
        if (a.length != n) {
            throw new IllegalArgumentException(name + " has " + a.length + " elements, expected " + n);
        }
        return a;
    }

    private static float[] requireLength(float[] a, int n, String name) {
        Checks.requireNonNull(a, name);
        if (a.length != n) {
            throw new IllegalArgumentException(name + " has " + a.length + " elements, expected " + n);
        }
        return a;
    }

    /** T. */
    public int tokens() {
        return tokens;
    }

    /** E. */
    public int experts() {
        return experts;
    }

    /** Entries per token: k, or E for expert choice. */
    public int choicesPerToken() {
        return choices;
    }

    /** G. */
    public int groups() {
        return groups;
    }

    /** C per expert and group, or {@link #UNLIMITED}. */
    public int capacity() {
        return capacity;
    }

    /** The expert of (token, choice), or -1. */
    public int expert(int token, int choice) {
        return expert[index(token, choice)];
    }

    /** The combine weight of (token, choice): 0 where dropped or absent. */
    public float gate(int token, int choice) {
        return gate[index(token, choice)];
    }

    /** The capacity slot of (token, choice), or -1 if dropped or absent. */
    public int slot(int token, int choice) {
        return slot[index(token, choice)];
    }

    /** Whether (token, choice) is an assignment that was kept. */
    public boolean isKept(int token, int choice) {
        return slot[index(token, choice)] >= 0;
    }

    private int index(int token, int choice) {
        if (token < 0 || token >= tokens || choice < 0 || choice >= choices) {
            throw new IndexOutOfBoundsException("(token " + token + ", choice " + choice + ") is outside [" + tokens + ", " + choices + "]");
        }
        return token * choices + choice;
    }

    /** [T, choices] experts, row-major (a copy). */
    public int[] experts2d() {
        return expert.clone();
    }

    /** [T, choices] gates, row-major (a copy). */
    public float[] gates() {
        return gate.clone();
    }

    /** [T, choices] slots, row-major (a copy). */
    public int[] slots() {
        return slot.clone();
    }

    /** [E] assignments each expert was chosen for, before capacity (a copy). */
    public int[] load() {
        return load.clone();
    }

    /** [E] assignments each expert kept (a copy). */
    public int[] kept() {
        return kept.clone();
    }

    /** Assignments chosen but not kept, over all experts. */
    public int dropped() {
        int d = 0;
        for (int e = 0; e < experts; e++) {
            d += load[e] - kept[e];
        }
        return d;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Routing r && tokens == r.tokens && experts == r.experts && choices == r.choices
                && groups == r.groups && capacity == r.capacity && Arrays.equals(expert, r.expert)
                && Arrays.equals(gate, r.gate) && Arrays.equals(slot, r.slot) && Arrays.equals(load, r.load)
                && Arrays.equals(kept, r.kept);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(expert) * 31 + Arrays.hashCode(slot);
    }

    @Override
    public String toString() {
        return "Routing[T=" + tokens + ", E=" + experts + ", choices=" + choices + ", groups=" + groups + ", capacity="
                + (capacity == UNLIMITED ? "unlimited" : capacity) + ", load=" + Arrays.toString(load) + ", kept="
                + Arrays.toString(kept) + "]";
    }
}

package io.github.moe4j.reference;

import io.github.moe4j.api.Priority;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Which assignments an expert keeps when it can take only C per group, and in which slot (SPEC §4).
 * The assignments of a group are put in {@link Priority} order; each expert keeps its first C and
 * the slot is the position among them. {@link Priority#GATE_VALUE} keeps the C largest gates and
 * numbers their slots in token order (DeepSpeed {@code topkgating}: {@code cumsum} over the kept mask).
 *
 * <pre>
 * Lepikhin, D. et al. "GShard." ICLR 2021. arXiv:2006.16668, Algorithm 2 (rank-major positions).
 * Riquelme, C. et al. "Scaling Vision with Sparse Mixture of Experts." NeurIPS 2021.
 * arXiv:2106.05974, Section 4.1 (batch prioritized routing).
 * </pre>
 * Mirrors Mesh-TF {@code _top_2_gating} ({@code position_in_expert}), flaxformer
 * {@code TokensChooseMaskedRouter} ({@code batch_prioritized_routing}), MegaBlocks (token-major
 * sort), DeepSpeed {@code topkgating(drop_policy='probs')}.
 */
public final class CapacityAssigner {
    private CapacityAssigner() {}

    /**
     * One (token, choice) that asks for a slot.
     *
     * @param token     t
     * @param rank      the choice index (rank in \( S_t \))
     * @param expert    e
     * @param gate      the gate before capacity (for {@link Priority#GATE_VALUE})
     * @param top1Score the token's top-1 probability (for {@link Priority#BATCH_PRIORITIZED})
     */
    public record Assignment(int token, int rank, int expert, double gate, double top1Score) {}

    /**
     * Slots for one group's assignments: {@code slots[i]} for {@code assignments.get(i)}, -1 if dropped.
     *
     * @param capacity C, or {@link Integer#MAX_VALUE} for no limit
     */
    public static int[] assign(List<Assignment> assignments, int experts, int capacity, Priority priority) {
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < assignments.size(); i++) {
            order.add(i);
        }
        order.sort(priorityOrder(assignments, priority));
        int[] slots = new int[assignments.size()];
        int[] taken = new int[experts];
        for (int i : order) {
            int e = assignments.get(i).expert();
            slots[i] = taken[e] < capacity ? taken[e] : -1;
            taken[e]++;
        }
        if (priority == Priority.GATE_VALUE) {
            renumberInTokenOrder(assignments, slots, experts);
        }
        return slots;
    }

    private static Comparator<Integer> priorityOrder(List<Assignment> a, Priority priority) {
        Comparator<Integer> byToken = Comparator.comparingInt(i -> a.get(i).token());
        Comparator<Integer> byRank = Comparator.comparingInt(i -> a.get(i).rank());
        switch (priority) {
            case RANK_MAJOR:
                return byRank.thenComparing(byToken);
            case TOKEN_MAJOR:
                return byToken.thenComparing(byRank);
            case BATCH_PRIORITIZED:
                return byRank.thenComparing(Comparator.comparingDouble((Integer i) -> a.get(i).top1Score()).reversed())
                        .thenComparing(byToken);
            case GATE_VALUE:
                return Comparator.comparingDouble((Integer i) -> a.get(i).gate()).reversed()
                        .thenComparing(byToken).thenComparing(byRank);
            default:
                throw new AssertionError(priority);
        }
    }

    /** Kept assignments of each expert get slots 0, 1, ... in (token, rank) order. */
    private static void renumberInTokenOrder(List<Assignment> a, int[] slots, int experts) {
        List<Integer> byToken = new ArrayList<>();
        for (int i = 0; i < a.size(); i++) {
            byToken.add(i);
        }
        byToken.sort(Comparator.comparingInt((Integer i) -> a.get(i).token()).thenComparingInt(i -> a.get(i).rank()));
        int[] next = new int[experts];
        for (int i : byToken) {
            if (slots[i] >= 0) {
                slots[i] = next[a.get(i).expert()]++;
            }
        }
    }
}

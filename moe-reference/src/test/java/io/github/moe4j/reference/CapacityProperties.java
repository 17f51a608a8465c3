package io.github.moe4j.reference;

import static io.github.moe4j.reference.ReferenceCases.RouterKind.EXPERT_CHOICE;
import static io.github.moe4j.reference.ReferenceCases.RouterKind.NOISY_TOP_K;
import static io.github.moe4j.reference.ReferenceCases.RouterKind.TOKEN_CHOICE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.CapacityBase;
import io.github.moe4j.api.GateNormalization;
import io.github.moe4j.api.Priority;
import io.github.moe4j.api.RenormTiming;
import io.github.moe4j.api.Rounding;
import io.github.moe4j.api.Routing;
import io.github.moe4j.api.SecondExpertPolicy;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import io.github.moe4j.reference.ReferenceCases.CapacityKind;
import io.github.moe4j.reference.ReferenceCases.RouterKind;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.statistics.Statistics;

/** Capacity, priority and slots (SPEC §4, §4a, §7; research §14.11 items 9–15 and 27). */
class CapacityProperties {
    private static final Set<RouterKind> TOP_K = EnumSet.of(TOKEN_CHOICE, NOISY_TOP_K);
    private static final Set<CapacityKind> ALL_CAPACITIES = EnumSet.allOf(CapacityKind.class);
    private static final Set<CapacityKind> LIMITED = EnumSet.of(CapacityKind.FACTOR, CapacityKind.FIXED);

    @Provide
    Arbitrary<MoeCase> anyCases() {
        return ReferenceCases.cases();
    }

    @Provide
    Arbitrary<MoeCase> topKCases() {
        return ReferenceCases.cases(TOKEN_CHOICE, NOISY_TOP_K);
    }

    @Provide
    Arbitrary<MoeCase> expertChoiceCases() {
        return ReferenceCases.cases(EXPERT_CHOICE);
    }

    /** Any case with a fixed capacity C in [0, T/G]. */
    @Provide
    Arbitrary<MoeCase> fixedCapacityCases() {
        return ReferenceCases.cases().flatMap(c -> Arbitraries.integers().between(0, c.groupSize())
                .map(cap -> c.withCapacity(Capacity.fixed(cap))));
    }

    /** Top-k cases whose capacity covers every group: fixed C ≥ T/G, or a factor cf = 8 ≥ E (≥ E/k with the k base). */
    @Provide
    Arbitrary<MoeCase> ampleCapacityCases() {
        Arbitrary<Capacity> ample = Arbitraries.oneOf(
                Arbitraries.integers().between(ReferenceCases.MAX_TOKENS, ReferenceCases.MAX_TOKENS + 3).map(Capacity::fixed),
                Combinators.combine(Arbitraries.of(CapacityBase.class), Arbitraries.of(Rounding.class), Arbitraries.integers().between(0, 4))
                        .as((base, rounding, min) -> Capacity.factor(8.0, base, rounding, min)));
        return Combinators.combine(topKCases(), ample).as(MoeCase::withCapacity);
    }

    // ---------------------------------------------------------------------------------------------

    /** Capacity per expert and group of a case, from SPEC §4 in integer arithmetic (the factors are multiples of 1/64). */
    static int expectedCapacity(MoeCase c) {
        int n = c.groupSize();
        Capacity cap = c.config().capacity();
        if (cap instanceof Capacity.Fixed f) {
            return Math.min(n, f.perExpert());
        }
        if (!(cap instanceof Capacity.Factor f)) {
            return Routing.UNLIMITED;
        }
        long num = Math.round(f.factor() * 64);
        assertEquals(f.factor() * 64, num, 0.0, "the generator's factors are multiples of 1/64");
        long b = f.base() == CapacityBase.ASSIGNMENTS ? Math.max(1, c.k()) : 1;
        long numerator = num * n * b;
        long denominator = 64L * c.experts();
        long floor = numerator / denominator;
        long twiceRemainder = 2 * (numerator % denominator);
        long rounded = switch (f.rounding()) {
            case FLOOR -> floor;
            case CEIL -> numerator % denominator > 0 ? floor + 1 : floor;
            case ROUND_HALF_EVEN -> twiceRemainder > denominator || (twiceRemainder == denominator && floor % 2 == 1) ? floor + 1 : floor;
        };
        return (int) Math.min(n, Math.max(f.minCapacity(), rounded));
    }

    /** C per expert and group is min(T/G, max(min, round(cf·b·(T/G)/E))) for a factor, min(T/G, C) when fixed, and unlimited when dropless. */
    @Property(tries = 300)
    void capacityFollowsTheFormula(@ForAll("anyCases") MoeCase c) {
        ReferenceCases.collectRouterAndCapacity(c, EnumSet.allOf(RouterKind.class), ALL_CAPACITIES, 4);
        ReferenceCases.collectShape(c, true);
        Compare.exactly("capacity per expert and group", expectedCapacity(c), c.forward().plan().capacity(), c);
    }

    /** In every group each expert keeps at most C assignments, in slots 0..n−1 without gaps or repeats, and only selected choices have slots. */
    @Property(tries = 300)
    void everyExpertHoldsAtMostCapacityPerGroupInDistinctSlots(@ForAll("anyCases") MoeCase c) {
        ReferenceCases.collectRouterAndCapacity(c, EnumSet.allOf(RouterKind.class), ALL_CAPACITIES, 4);
        RoutingPlan plan = c.forward().plan();
        int m = c.choices();
        for (int g = 0; g < c.groups(); g++) {
            for (int e = 0; e < c.experts(); e++) {
                List<Integer> slots = new ArrayList<>();
                for (int t = g * c.groupSize(); t < (g + 1) * c.groupSize(); t++) {
                    for (int j = 0; j < m; j++) {
                        int s = plan.slot()[t * m + j];
                        assertTrue(s < 0 || plan.selected()[t * m + j] >= 0, "slot without an expert at (" + t + ", " + j + "); " + c);
                        if (s >= 0 && plan.selected()[t * m + j] == e) {
                            slots.add(s);
                        }
                    }
                }
                assertTrue(slots.size() <= plan.capacity(), "expert " + e + " holds " + slots.size() + " > C = " + plan.capacity()
                        + " in group " + g + "; " + c);
                int[] sorted = slots.stream().mapToInt(Integer::intValue).sorted().toArray();
                Compare.exactly("slots of expert " + e + " in group " + g, java.util.stream.IntStream.range(0, sorted.length).toArray(), sorted, c);
            }
        }
    }

    /** The plan's per-expert load counts every selected assignment and kept counts those with a slot, over all groups. */
    @Property(tries = 200)
    void loadAndKeptCountTheAssignments(@ForAll("anyCases") MoeCase c) {
        RoutingPlan plan = c.forward().plan();
        int[] load = new int[c.experts()];
        int[] kept = new int[c.experts()];
        for (int i = 0; i < plan.selected().length; i++) {
            if (plan.selected()[i] >= 0) {
                load[plan.selected()[i]]++;
                kept[plan.selected()[i]] += plan.slot()[i] >= 0 ? 1 : 0;
            }
        }
        Compare.exactly("load per expert", load, plan.load(), c);
        Compare.exactly("kept per expert", kept, plan.kept(), c);
    }

    /** Raising a fixed capacity from C to C+1 changes no selection and drops nothing that was kept. */
    @Property(tries = 300)
    void keptSetForCIsContainedInKeptSetForCPlusOne(@ForAll("fixedCapacityCases") MoeCase c) {
        ReferenceCases.collectRouterAndCapacity(c, EnumSet.allOf(RouterKind.class), EnumSet.of(CapacityKind.FIXED), 4);
        int cap = ((Capacity.Fixed) c.config().capacity()).perExpert();
        RoutingPlan small = c.forward().plan();
        RoutingPlan large = c.withCapacity(Capacity.fixed(cap + 1)).forward().plan();
        if (c.isExpertChoice()) {
            for (int i = 0; i < small.selected().length; i++) {
                assertTrue(small.selected()[i] < 0 || large.selected()[i] == small.selected()[i],
                        "expert choice: expert " + i % c.experts() + " took token " + i / c.experts() + " at C = " + cap + " but not at C + 1; " + c);
            }
            return;
        }
        Compare.exactly("selection at C and C + 1", small.selected(), large.selected(), c);
        boolean grew = false;
        for (int i = 0; i < small.slot().length; i++) {
            assertTrue(small.slot()[i] < 0 || large.slot()[i] >= 0,
                    "assignment (" + i / c.k() + ", " + i % c.k() + ") kept at C = " + cap + " is dropped at C + 1; " + c);
            grew |= small.slot()[i] < 0 && large.slot()[i] >= 0;
        }
        Statistics.label("C + 1 keeps more").collect(grew);
        Statistics.label("C + 1 keeps more").coverage(cov -> cov.check(true).percentage(p -> p >= 10));
    }

    /** With C ≥ T/G (fixed, or a factor of 8 ≥ E) nothing is dropped: the routing equals the dropless one. */
    @Property(tries = 200)
    void nothingIsDroppedWhenCapacityCoversTheGroup(@ForAll("ampleCapacityCases") MoeCase c) {
        ReferenceCases.collectRouterAndCapacity(c, TOP_K, LIMITED, 4);
        RoutingPlan plan = c.forward().plan();
        RoutingPlan dropless = c.withCapacity(Capacity.dropless()).forward().plan();
        Compare.exactly("capacity", c.groupSize(), plan.capacity(), c);
        Compare.exactly("selection", dropless.selected(), plan.selected(), c);
        Compare.exactly("slots against dropless", dropless.slot(), plan.slot(), c);
        Compare.bitwise("gates against dropless", dropless.gate(), plan.gate(), c);
        boolean everySecondChoice = !(c.config().router() instanceof TokenChoiceRouterConfig tc)
                || tc.secondExpertPolicy().kind() == SecondExpertPolicy.Kind.ALL;
        for (int t = 0; t < c.tokens(); t++) {
            for (int j = 0; j < c.k(); j++) {
                if (c.isRouted(t) && (everySecondChoice || j == 0)) {
                    assertTrue(plan.isKept(t, j), "assignment (" + t + ", " + j + ") dropped with C = " + plan.capacity() + "; " + c);
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Priority

    /** One assignment that competes for capacity. */
    record Ask(int token, int rank, int expert, double priorityGate, double top1) {}

    /** The order in which a priority rule lets assignments take slots (SPEC §4). */
    static Comparator<Ask> order(Priority priority) {
        Comparator<Ask> byToken = Comparator.comparingInt(Ask::token);
        Comparator<Ask> byRank = Comparator.comparingInt(Ask::rank);
        return switch (priority) {
            case RANK_MAJOR -> byRank.thenComparing(byToken);
            case TOKEN_MAJOR -> byToken.thenComparing(byRank);
            case BATCH_PRIORITIZED -> byRank.thenComparing(Comparator.comparingDouble((Ask a) -> a.top1()).reversed()).thenComparing(byToken);
            case GATE_VALUE -> Comparator.comparingDouble((Ask a) -> a.priorityGate()).reversed().thenComparing(byToken);
        };
    }

    /**
     * The assignments of group g that compete for capacity: those the dropless run keeps (everything
     * but GShard's policy drops, which {@code GatingProperties} checks against the uniforms). The
     * GATE_VALUE key is the gate before capacity, or p when RENORMALIZE renormalises after capacity
     * (the reading of the reference's javadoc and DeepSpeed {@code topkgating(drop_policy='probs')}).
     */
    static List<Ask> asks(MoeCase c, ReferenceForward dropless, int g) {
        int k = c.k();
        int e = c.experts();
        boolean pKey = c.config().router() instanceof TokenChoiceRouterConfig tc && tc.gates() == GateNormalization.RENORMALIZE
                && tc.renormTiming() == RenormTiming.AFTER_CAPACITY;
        RoutingPlan plan = dropless.plan();
        double[] p = dropless.router().probs();
        List<Ask> asks = new ArrayList<>();
        for (int t = g * c.groupSize(); t < (g + 1) * c.groupSize(); t++) {
            for (int j = 0; j < k; j++) {
                if (plan.isKept(t, j)) {
                    int ex = plan.selected()[t * k + j];
                    double key = pKey ? p[t * e + ex] : plan.gateBeforeCapacity()[t * k + j];
                    asks.add(new Ask(t, j, ex, key, p[t * e + plan.selected()[t * k]]));
                }
            }
        }
        return asks;
    }

    /** Per group and expert the kept assignments are the first C in priority order, in slots numbered in that order (GATE_VALUE: in token order). */
    @Property(tries = 500)
    void keptAssignmentsAreTheFirstCInPriorityOrder(@ForAll("topKCases") MoeCase c) {
        ReferenceCases.collectRouterAndCapacity(c, TOP_K, ALL_CAPACITIES, 4);
        Statistics.label("priority").collect(c.config().priority());
        Statistics.label("priority").coverage(cov -> {
            for (Priority p : Priority.values()) {
                cov.check(p).percentage(x -> x >= 10);
            }
        });
        ReferenceForward f = c.forward();
        ReferenceForward dropless = c.withCapacity(Capacity.dropless()).forward();
        Compare.exactly("selection against dropless", dropless.plan().selected(), f.plan().selected(), c);
        int cap = f.plan().capacity();
        int k = c.k();
        int droppedByCapacity = 0;
        for (int g = 0; g < c.groups(); g++) {
            List<Ask> asks = asks(c, dropless, g);
            for (int e = 0; e < c.experts(); e++) {
                final int ex = e;
                List<Ask> mine = asks.stream().filter(a -> a.expert() == ex).sorted(order(c.config().priority())).toList();
                int keep = Math.min(cap, mine.size());
                List<Ask> kept = mine.subList(0, keep);
                List<Ask> slotOrder = c.config().priority() == Priority.GATE_VALUE
                        ? kept.stream().sorted(Comparator.comparingInt(Ask::token).thenComparingInt(Ask::rank)).toList() : kept;
                for (int i = 0; i < mine.size(); i++) {
                    Ask a = mine.get(i);
                    int want = i < keep ? slotOrder.indexOf(a) : -1;
                    Compare.exactly("slot of (" + a.token() + ", " + a.rank() + ") → expert " + ex + " (" + (i + 1) + "-th of "
                            + mine.size() + " in priority order, C = " + cap + ")", want, f.plan().slot()[a.token() * k + a.rank()], c);
                }
                droppedByCapacity += mine.size() - keep;
            }
        }
        Statistics.label("dropped by capacity").collect(droppedByCapacity > 0);
        Statistics.label("dropped by capacity").coverage(cov -> cov.check(true).percentage(x -> x >= 15));
    }

    /** Per group every expert keeps min(C, assigned) assignments, under every priority. */
    @Property(tries = 300)
    void keptPerExpertIsMinOfCapacityAndAssigned(@ForAll("topKCases") MoeCase c) {
        // "assigned" leaves out GShard's policy drops: it counts what the dropless run keeps.
        ReferenceCases.collectRouterAndCapacity(c, TOP_K, ALL_CAPACITIES, 4);
        Statistics.label("priority").collect(c.config().priority());
        RoutingPlan plan = c.forward().plan();
        RoutingPlan dropless = c.withCapacity(Capacity.dropless()).forward().plan();
        int k = c.k();
        for (int g = 0; g < c.groups(); g++) {
            int[] assigned = new int[c.experts()];
            int[] kept = new int[c.experts()];
            for (int t = g * c.groupSize(); t < (g + 1) * c.groupSize(); t++) {
                for (int j = 0; j < k; j++) {
                    if (dropless.isKept(t, j)) {
                        assigned[dropless.selected()[t * k + j]]++;
                    }
                    if (plan.isKept(t, j)) {
                        kept[plan.selected()[t * k + j]]++;
                    }
                }
            }
            int[] want = java.util.Arrays.stream(assigned).map(a -> Math.min(plan.capacity(), a)).toArray();
            Compare.exactly("kept per expert in group " + g + " = min(C = " + plan.capacity() + ", assigned " + java.util.Arrays.toString(assigned) + ")",
                    want, kept, c);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Expert choice

    /** Expert choice: in every group each expert takes exactly min(C, eligible) tokens, those with the largest p_{t,e} (ties to the lower token), gated by p. */
    @Property(tries = 300)
    void expertChoiceGivesEveryExpertExactlyCTokens(@ForAll("expertChoiceCases") MoeCase c) {
        ReferenceCases.collectRouterAndCapacity(c, EnumSet.of(EXPERT_CHOICE), LIMITED, 4);
        ReferenceCases.collectShape(c, false);
        ReferenceForward f = c.forward();
        RoutingPlan plan = f.plan();
        int e = c.experts();
        int cap = expectedCapacity(c);
        Compare.exactly("capacity", cap, plan.capacity(), c);
        boolean full = false;
        for (int g = 0; g < c.groups(); g++) {
            int[] eligible = java.util.stream.IntStream.range(g * c.groupSize(), (g + 1) * c.groupSize()).filter(c::isRouted).toArray();
            full |= eligible.length >= cap && cap > 0;
            for (int ex = 0; ex < e; ex++) {
                final int expert = ex;
                double[] scores = Arrays.stream(eligible).mapToDouble(t -> f.router().probs()[t * e + expert]).toArray();
                int[] best = NaiveMoe.topK(scores, Math.min(cap, eligible.length));
                int[] want = new int[c.groupSize() * 1];
                Arrays.fill(want, -1);
                for (int s = 0; s < best.length; s++) {
                    want[eligible[best[s]] - g * c.groupSize()] = s;
                }
                for (int t = g * c.groupSize(); t < (g + 1) * c.groupSize(); t++) {
                    int i = t * e + ex;
                    int slot = want[t - g * c.groupSize()];
                    Compare.exactly("slot of token " + t + " at expert " + ex, slot, plan.slot()[i], c);
                    Compare.exactly("entry (" + t + ", " + ex + ")", slot >= 0 ? ex : -1, plan.selected()[i], c);
                    assertEquals(slot >= 0 ? f.router().probs()[i] : 0.0, plan.gate()[i], 0.0, "gate of (" + t + ", " + ex + ") is p; " + c);
                }
            }
        }
        Statistics.label("a group fills C").collect(full);
        Statistics.label("a group fills C").coverage(cov -> cov.check(true).percentage(x -> x >= 20));
    }
}

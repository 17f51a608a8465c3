package io.github.moe4j.conformance;

import io.github.moe4j.api.ExpertChoiceRouterConfig;
import io.github.moe4j.api.GateNormalization;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.PaddingPolicy;
import io.github.moe4j.api.Priority;
import io.github.moe4j.api.RenormTiming;
import io.github.moe4j.api.RouterNoise;
import io.github.moe4j.api.Routing;
import io.github.moe4j.api.SecondExpertPolicy;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import io.github.moe4j.reference.ReferenceForward;
import io.github.moe4j.reference.RoutingPlan;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The routing rules a backend's {@link Routing} must follow, judged against the oracle:
 * its shape; the selection within SPEC §11's margin of the oracle's keys, with exact ties to the
 * lower index; capacity slots per the priority rule; load and kept counts; gates.
 */
final class RoutingChecks {
    private RoutingChecks() {}

    // ---------------------------------------------------------------------------------------------
    // shape

    /** The routing has the call's sizes, experts in range, and dropped or absent entries with slot -1 and gate 0. */
    static void structure(Oracle o, Routing r) {
        MoeConfig c = o.config();
        int t = o.input().dim(0);
        int m = c.choicesPerToken();
        Object ctx = o.context();
        if (r.tokens() != t || r.experts() != c.experts() || r.choicesPerToken() != m || r.groups() != o.options().groups()) {
            throw Compare.failure("routing has T=" + r.tokens() + ", E=" + r.experts() + ", choices=" + r.choicesPerToken()
                    + ", G=" + r.groups() + " but the call has T=" + t + ", E=" + c.experts() + ", choices=" + m + ", G="
                    + o.options().groups(), ctx);
        }
        boolean expertChoice = c.router() instanceof ExpertChoiceRouterConfig;
        for (int i = 0; i < t; i++) {
            boolean routed = routed(o, i);
            for (int j = 0; j < m; j++) {
                int e = r.expert(i, j);
                int s = r.slot(i, j);
                String at = "routing (token " + i + ", choice " + j + ")";
                if (e < -1 || e >= c.experts()) {
                    throw Compare.failure(at + ": expert " + e + " is not in [-1, " + c.experts() + ")", ctx);
                }
                if (expertChoice && e != -1 && e != j) {
                    throw Compare.failure(at + ": expert choice entry j must be expert j or -1, got " + e, ctx);
                }
                if (!expertChoice && routed && e < 0) {
                    throw Compare.failure(at + ": a routed token must have k = " + m + " experts, got -1", ctx);
                }
                if (!routed && e >= 0) {
                    throw Compare.failure(at + ": a padding token under PaddingPolicy.NOT_ROUTED chooses no expert, got " + e, ctx);
                }
                if (s < -1 || (e < 0 && s != -1)) {
                    throw Compare.failure(at + ": slot " + s + " with expert " + e + " (a slot is -1 or >= 0 and -1 where there is no expert)", ctx);
                }
                if (s < 0 && Float.floatToRawIntBits(r.gate(i, j)) != 0) {
                    throw Compare.failure(at + ": a dropped or absent entry has gate exactly 0, got " + r.gate(i, j), ctx);
                }
            }
            if (!expertChoice && routed) {
                for (int j = 0; j < m; j++) {
                    for (int j2 = j + 1; j2 < m; j2++) {
                        if (r.expert(i, j) == r.expert(i, j2)) {
                            throw Compare.failure("routing token " + i + " chooses expert " + r.expert(i, j) + " twice: "
                                    + Arrays.toString(row(r, i)), ctx);
                        }
                    }
                }
            }
        }
    }

    static boolean routed(Oracle o, int t) {
        return o.config().padding() == PaddingPolicy.ROUTED || o.options().paddingMask() == null
                || o.options().paddingMask().get(t) == 1f;
    }

    static int[] row(Routing r, int t) {
        int[] s = new int[r.choicesPerToken()];
        for (int j = 0; j < s.length; j++) {
            s[j] = r.expert(t, j);
        }
        return s;
    }

    // ---------------------------------------------------------------------------------------------
    // selection

    /**
     * SPEC §11: each chosen expert's oracle key is at least the oracle's k-th key minus δ, and the
     * ranks are in key order within δ; where oracle keys are exactly equal (by construction: tied
     * logits are equal in every format), the lower index comes first. For expert choice the same
     * rule holds per expert over the tokens of its group, on the probabilities.
     */
    static void selection(Oracle o, Routing r) {
        MoeConfig c = o.config();
        ReferenceForward own = o.own();
        if (c.router() instanceof ExpertChoiceRouterConfig) {
            expertChoiceSelection(o, r);
            return;
        }
        int t = r.tokens();
        int e = c.experts();
        int k = c.topK();
        double[] keys = own.router().keys();
        for (int i = 0; i < t; i++) {
            if (!routed(o, i)) {
                continue;
            }
            double max = 0;
            for (int x = 0; x < e; x++) {
                max = Math.max(max, Math.abs(keys[i * e + x]));
            }
            double delta = Tolerances.routingMargin(max);
            int[] chosen = row(r, i);
            boolean[] in = new boolean[e];
            for (int x : chosen) {
                in[x] = true;
            }
            for (int j = 0; j < k; j++) {
                int a = chosen[j];
                for (int b = 0; b < e; b++) {
                    if (!in[b] && beats(keys[i * e + b], b, keys[i * e + a], a, delta)) {
                        throw selectionFailure(o, r, i, "expert " + b + " (oracle key " + keys[i * e + b] + ") was not chosen but beats chosen expert "
                                + a + " (oracle key " + keys[i * e + a] + ")", delta, keys);
                    }
                }
                for (int j2 = j + 1; j2 < k; j2++) {
                    int b = chosen[j2];
                    if (beats(keys[i * e + b], b, keys[i * e + a], a, delta)) {
                        throw selectionFailure(o, r, i, "rank " + j2 + " expert " + b + " (oracle key " + keys[i * e + b] + ") comes after rank "
                                + j + " expert " + a + " (oracle key " + keys[i * e + a] + ") but beats it", delta, keys);
                    }
                }
            }
        }
    }

    /** Whether (key b, index b) must come before (key a, index a): larger by more than δ, or exactly equal and lower index. */
    static boolean beats(double keyB, int b, double keyA, int a, double delta) {
        return keyB > keyA + delta || (keyB == keyA && b < a);
    }

    private static AssertionErrorWithCase selectionFailure(Oracle o, Routing r, int t, String what, double delta, double[] keys) {
        int e = o.config().experts();
        int k = o.config().choicesPerToken();
        int[] want = Arrays.copyOfRange(o.own().plan().selected(), t * k, (t + 1) * k);
        return new AssertionErrorWithCase("selection of token " + t + ": " + what + "; margin delta = " + delta
                + " (SPEC 11: 1e-4*(1 + max|key|)), ties to the lower index\n  backend chose " + Arrays.toString(row(r, t))
                + ", oracle chose " + Arrays.toString(want) + ", oracle keys " + Arrays.toString(Arrays.copyOfRange(keys, t * e, (t + 1) * e)),
                o.context());
    }

    private static void expertChoiceSelection(Oracle o, Routing r) {
        MoeConfig c = o.config();
        int t = r.tokens();
        int e = c.experts();
        int g = r.groups();
        int size = g == 0 ? 0 : t / g;
        double[] s = o.own().router().probs();
        int cap = o.own().plan().capacity();
        for (int grp = 0; grp < g; grp++) {
            for (int x = 0; x < e; x++) {
                List<Integer> eligible = new ArrayList<>();
                int[] tokenAtSlot = new int[size];
                Arrays.fill(tokenAtSlot, -1);
                int taken = 0;
                double max = 0;
                for (int i = grp * size; i < (grp + 1) * size; i++) {
                    if (routed(o, i)) {
                        eligible.add(i);
                        max = Math.max(max, Math.abs(s[i * e + x]));
                    }
                    if (r.expert(i, x) == x) {
                        int slot = r.slot(i, x);
                        if (slot < 0 || slot >= size || tokenAtSlot[slot] >= 0) {
                            throw Compare.failure("expert choice: expert " + x + " of group " + grp + " took token " + i + " with slot "
                                    + slot + " (slots must be distinct, in [0, " + size + "))", o.context());
                        }
                        tokenAtSlot[slot] = i;
                        taken++;
                    }
                }
                int want = Math.min(cap, eligible.size());
                if (taken != want) {
                    throw Compare.failure("expert choice: expert " + x + " of group " + grp + " took " + taken + " tokens but min(C = " + cap
                            + ", eligible = " + eligible.size() + ") = " + want + " (SPEC 7: every expert takes exactly C)", o.context());
                }
                double delta = Tolerances.routingMargin(max);
                for (int slot = 0; slot < taken; slot++) {
                    int a = tokenAtSlot[slot];
                    if (a < 0) {
                        throw Compare.failure("expert choice: expert " + x + " of group " + grp + " has no token in slot " + slot
                                + " but took " + taken, o.context());
                    }
                    for (int b : eligible) {
                        boolean chosen = r.expert(b, x) == x;
                        if (!chosen && beats(s[b * e + x], b, s[a * e + x], a, delta)) {
                            throw Compare.failure("expert choice: expert " + x + " took token " + a + " (s = " + s[a * e + x] + ") but not token "
                                    + b + " (s = " + s[b * e + x] + "); margin " + delta + ", ties to the lower token", o.context());
                        }
                        if (chosen && r.slot(b, x) > slot && beats(s[b * e + x], b, s[a * e + x], a, delta)) {
                            throw Compare.failure("expert choice: expert " + x + " put token " + a + " (s = " + s[a * e + x] + ") in slot " + slot
                                    + " before token " + b + " (s = " + s[b * e + x] + ") in slot " + r.slot(b, x) + "; margin " + delta, o.context());
                        }
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // capacity and slots

    /**
     * The capacity C is the oracle's (SPEC §4: computed from the group's size, unlimited when
     * dropless, even for a call of no tokens).
     */
    static void capacity(Oracle o, Routing r) {
        int want = o.own().plan().capacity();
        if (r.capacity() != want) {
            throw Compare.failure("routing capacity is " + r.capacity() + " but the oracle's C for " + r.tokens() + " tokens in "
                    + r.groups() + " groups is " + (want == Routing.UNLIMITED ? "unlimited" : want), o.context());
        }
    }

    /**
     * The capacity slots follow the priority rule (SPEC §4), given the backend's own selection: per
     * group and expert, the kept assignments are min(C, asked), no dropped assignment comes before
     * a kept one in priority order, and the slots number the kept ones 0, 1, ... in priority order
     * ({@link Priority#GATE_VALUE}: in token order). Where the order depends on values (gate,
     * top-1 probability) that lie within δ, either order is accepted; exactly equal values go by
     * token, then rank.
     */
    static void slots(Oracle o, Routing r, ReferenceForward onRouting) {
        MoeConfig c = o.config();
        if (c.router() instanceof ExpertChoiceRouterConfig) {
            return; // expert choice: slots are the selection order, checked by selection()
        }
        int t = r.tokens();
        int e = c.experts();
        int k = c.topK();
        int g = r.groups();
        int size = g == 0 ? 0 : t / g;
        RoutingPlan plan = onRouting.plan();
        double[] p = o.own().router().probs();
        boolean afterCapacity = c.router() instanceof TokenChoiceRouterConfig tc && tc.gates() == GateNormalization.RENORMALIZE
                && tc.renormTiming() == RenormTiming.AFTER_CAPACITY;
        int[] policy = policyDecisions(o, r, plan);
        for (int grp = 0; grp < g; grp++) {
            for (int x = 0; x < e; x++) {
                List<int[]> asked = new ArrayList<>(); // {token, rank}
                for (int i = grp * size; i < (grp + 1) * size; i++) {
                    for (int j = 0; j < k; j++) {
                        if (r.expert(i, j) != x) {
                            continue;
                        }
                        int decision = policy[i * k + j];
                        if (decision == POLICY_DROPS && r.slot(i, j) >= 0) {
                            throw Compare.failure("token " + i + " rank 1 (expert " + x + ") is dropped by GShard's RANDOM policy (u = "
                                    + uniform(o, i) + " >= g2/theta) but was kept in slot " + r.slot(i, j), o.context());
                        }
                        if (decision == POLICY_DROPS || (decision == POLICY_EITHER && r.slot(i, j) < 0)) {
                            continue;
                        }
                        asked.add(new int[] {i, j});
                    }
                }
                double[] keys = new double[asked.size()];
                double max = 0;
                for (int a = 0; a < keys.length; a++) {
                    int i = asked.get(a)[0];
                    int j = asked.get(a)[1];
                    keys[a] = switch (c.priority()) {
                        case GATE_VALUE -> afterCapacity ? p[i * e + x] : plan.gateBeforeCapacity()[i * k + j];
                        case BATCH_PRIORITIZED -> p[i * e + r.expert(i, 0)];
                        default -> 0;
                    };
                    max = Math.max(max, Math.abs(keys[a]));
                }
                double delta = Tolerances.routingMargin(max);
                checkExpert(o, r, grp, x, asked, keys, delta);
            }
        }
    }

    private static void checkExpert(Oracle o, Routing r, int grp, int x, List<int[]> asked, double[] keys, double delta) {
        Priority priority = o.config().priority();
        int cap = r.capacity();
        int n = asked.size();
        int keptCount = 0;
        int[] slotOf = new int[n];
        boolean[] used = new boolean[n];
        for (int a = 0; a < n; a++) {
            slotOf[a] = r.slot(asked.get(a)[0], asked.get(a)[1]);
            if (slotOf[a] >= 0) {
                keptCount++;
            }
        }
        String where = "expert " + x + " of group " + grp + " (priority " + priority + ", C = "
                + (cap == Routing.UNLIMITED ? "unlimited" : cap) + ")";
        int want = (int) Math.min((long) cap, n);
        if (keptCount != want) {
            throw Compare.failure(where + " kept " + keptCount + " of " + n + " assignments asked for, but min(C, asked) = " + want
                    + "\n  asked (token, rank) -> slot: " + describe(asked, slotOf), o.context());
        }
        for (int a = 0; a < n; a++) {
            if (slotOf[a] >= 0) {
                if (slotOf[a] >= keptCount || used[slotOf[a]]) {
                    throw Compare.failure(where + ": slots must be 0.." + (keptCount - 1) + ", each once\n  asked (token, rank) -> slot: "
                            + describe(asked, slotOf), o.context());
                }
                used[slotOf[a]] = true;
            }
        }
        for (int a = 0; a < n; a++) {
            for (int b = 0; b < n; b++) {
                if (a == b || !precedes(priority, asked.get(b), keys[b], asked.get(a), keys[a], delta)) {
                    continue;
                }
                // b must come before a
                if (slotOf[a] >= 0 && slotOf[b] < 0) {
                    throw Compare.failure(where + ": (token " + asked.get(b)[0] + ", rank " + asked.get(b)[1] + ") was dropped but (token "
                            + asked.get(a)[0] + ", rank " + asked.get(a)[1] + ") was kept, and the first comes first"
                            + keyText(priority, keys[b], keys[a], delta) + "\n  asked (token, rank) -> slot: " + describe(asked, slotOf), o.context());
                }
                if (priority != Priority.GATE_VALUE && slotOf[a] >= 0 && slotOf[b] > slotOf[a]) {
                    throw Compare.failure(where + ": (token " + asked.get(b)[0] + ", rank " + asked.get(b)[1] + ") has slot " + slotOf[b]
                            + " after (token " + asked.get(a)[0] + ", rank " + asked.get(a)[1] + ") in slot " + slotOf[a]
                            + ", but comes first" + keyText(priority, keys[b], keys[a], delta) + "\n  asked (token, rank) -> slot: "
                            + describe(asked, slotOf), o.context());
                }
            }
        }
        if (priority == Priority.GATE_VALUE) {
            int expect = 0;
            for (int a = 0; a < n; a++) { // asked is in (token, rank) order
                if (slotOf[a] >= 0 && slotOf[a] != expect++) {
                    throw Compare.failure(where + ": GATE_VALUE numbers the kept assignments in token order, but (token "
                            + asked.get(a)[0] + ", rank " + asked.get(a)[1] + ") has slot " + slotOf[a] + " instead of " + (expect - 1)
                            + "\n  asked (token, rank) -> slot: " + describe(asked, slotOf), o.context());
                }
            }
        }
    }

    /** Whether assignment b {token, rank} must precede a in the priority order. */
    static boolean precedes(Priority priority, int[] b, double keyB, int[] a, double keyA, double delta) {
        return switch (priority) {
            case RANK_MAJOR -> b[1] < a[1] || (b[1] == a[1] && b[0] < a[0]);
            case TOKEN_MAJOR -> b[0] < a[0] || (b[0] == a[0] && b[1] < a[1]);
            case BATCH_PRIORITIZED -> b[1] < a[1] || (b[1] == a[1] && (keyB > keyA + delta || (keyB == keyA && b[0] < a[0])));
            case GATE_VALUE -> keyB > keyA + delta || (keyB == keyA && (b[0] < a[0] || (b[0] == a[0] && b[1] < a[1])));
        };
    }

    private static String keyText(Priority priority, double keyB, double keyA, double delta) {
        return priority == Priority.GATE_VALUE || priority == Priority.BATCH_PRIORITIZED
                ? " (oracle keys " + keyB + " vs " + keyA + ", margin " + delta + ")" : "";
    }

    private static String describe(List<int[]> asked, int[] slotOf) {
        StringBuilder sb = new StringBuilder();
        for (int a = 0; a < asked.size(); a++) {
            sb.append(a == 0 ? "" : ", ").append('(').append(asked.get(a)[0]).append(", ").append(asked.get(a)[1]).append(")->")
                    .append(slotOf[a]);
        }
        return sb.toString();
    }

    static final int POLICY_KEEPS = 0;
    static final int POLICY_DROPS = 1;
    static final int POLICY_EITHER = 2;

    /** GShard's RANDOM second-expert decision per (token, rank), judged with the oracle's gate; within δ either is accepted. */
    private static int[] policyDecisions(Oracle o, Routing r, RoutingPlan plan) {
        int t = r.tokens();
        int k = o.config().topK();
        int[] d = new int[t * k];
        if (!(o.config().router() instanceof TokenChoiceRouterConfig tc) || tc.secondExpertPolicy().kind() != SecondExpertPolicy.Kind.RANDOM) {
            return d;
        }
        RouterNoise noise = o.options().noiseFor(o.config(), t);
        if (noise.secondExpertUniform() == null) {
            return d;
        }
        double theta = tc.secondExpertPolicy().threshold();
        for (int i = 0; i < t; i++) {
            if (r.expert(i, 0) < 0) {
                continue;
            }
            double bound = plan.gateBeforeCapacity()[i * k + 1] / theta;
            double u = noise.secondExpertUniform().get(i);
            if (Math.abs(u - bound) <= Tolerances.routingMargin(bound)) {
                d[i * k + 1] = POLICY_EITHER;
            } else {
                d[i * k + 1] = u < bound ? POLICY_KEEPS : POLICY_DROPS;
            }
        }
        return d;
    }

    private static double uniform(Oracle o, int t) {
        return o.options().noiseFor(o.config(), o.input().dim(0)).secondExpertUniform().get(t);
    }

    // ---------------------------------------------------------------------------------------------
    // counts and gates

    /** load counts the selection per expert, kept counts the kept assignments (SPEC §4), and both are the oracle's on the same routing. */
    static void counts(Oracle o, Routing r, ReferenceForward onRouting) {
        int e = o.config().experts();
        int[] load = new int[e];
        int[] kept = new int[e];
        for (int i = 0; i < r.tokens(); i++) {
            for (int j = 0; j < r.choicesPerToken(); j++) {
                int x = r.expert(i, j);
                if (x >= 0) {
                    load[x]++;
                    kept[x] += r.slot(i, j) >= 0 ? 1 : 0;
                }
            }
        }
        Compare.exactly("routing.load (assignments chosen per expert)", load, r.load(), new int[] {e}, o.context());
        Compare.exactly("routing.kept (assignments kept per expert)", kept, r.kept(), new int[] {e}, o.context());
        Compare.exactly("routing.load vs oracle on the same routing", onRouting.plan().load(), r.load(), new int[] {e}, o.context());
        Compare.exactly("routing.kept vs oracle on the same routing", onRouting.plan().kept(), r.kept(), new int[] {e}, o.context());
    }

    /** The gates are the oracle's gates recomputed in double on the backend's routing. */
    static void gates(Oracle o, Routing r, ReferenceForward onRouting, Tolerance tol) {
        float[] g = r.gates();
        double[] got = new double[g.length];
        for (int i = 0; i < g.length; i++) {
            got[i] = g[i];
        }
        Compare.floatsReport("routing.gate [T, choices]", onRouting.plan().gate(), got, new int[] {r.tokens(), r.choicesPerToken()}, tol, 1)
                .assertPassed(o.context());
    }

    /** The backend chose exactly the oracle's experts, in the same ranks (used where ties are exact by construction). */
    static void sameSelection(Oracle o, Routing r) {
        int m = o.config().choicesPerToken();
        Compare.exactly("routing.expert [T, choices] on exactly tied logits (ties go to the lower index)", o.own().plan().selected(),
                r.experts2d(), new int[] {r.tokens(), m}, o.context());
        Compare.exactly("routing.slot [T, choices] on exactly tied logits", o.own().plan().slot(), r.slots(), new int[] {r.tokens(), m},
                o.context());
    }

    /** Whether a configuration's router is one of the noisy kinds (for descriptions). */
    static boolean noisy(MoeConfig c) {
        return c.router() instanceof NoisyTopKRouterConfig;
    }
}

package io.github.moe4j.conformance;

import io.github.moe4j.conformance.Coverage.Direction;
import io.github.moe4j.reference.ReferenceForward;
import net.jqwik.api.ForAll;
import net.jqwik.api.From;
import net.jqwik.api.Property;

/**
 * Routing (SPEC §3, §4, §6, §7, §11): the backend's selection is a valid top-k of the oracle's keys
 * within the margin δ; exact ties go to the lower index; the capacity slots follow the priority
 * rule; load and kept count the routing; the capacity is the oracle's; the gates are the oracle's
 * on the backend's routing.
 */
public interface RoutingContract extends BackendContract {

    /**
     * Each chosen expert's oracle key is at least the oracle's k-th key minus
     * \( \delta = 10^{-4}(1 + \max|z_t|) \), ranks are in key order within δ, and the routing has the
     * call's shape (experts in range, k distinct per routed token, none for unrouted padding).
     * Expert choice: per expert over its group's tokens, on the probabilities. 300 tries.
     */
    @Property(tries = 300)
    default void selectionIsWithinTheMarginOfTheOracle(@ForAll @From(supplier = MoeCases.All.class) MoeCase c) throws Exception {
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            Oracle o = Oracle.of(c);
            try (Calls call = Calls.forward(b, c)) {
                RoutingChecks.structure(o, call.routing);
                RoutingChecks.selection(o, call.routing);
            }
        });
    }

    /**
     * With the router weight zero, every logit is the router bias (from {-0.5, 0, 0.5}) or 0:
     * exactly tied in every format, so the selection and slots must be exactly the oracle's (value
     * descending, then index ascending; SPEC §3). 150 tries.
     */
    @Property(tries = 150)
    default void exactTiesGoToTheLowerIndex(@ForAll @From(supplier = MoeCases.Tied.class) MoeCase c) throws Exception {
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            Oracle o = Oracle.of(c);
            try (Calls call = Calls.forward(b, c)) {
                RoutingChecks.structure(o, call.routing);
                RoutingChecks.sameSelection(o, call.routing);
            }
        });
    }

    /**
     * Given the backend's own selection, the kept assignments and their slots follow the priority
     * rule (SPEC §4): per group and expert, min(C, asked) kept, none dropped ahead of a kept one,
     * slots numbered in priority order (GATE_VALUE: token order); C is the oracle's. 300 tries.
     */
    @Property(tries = 300)
    default void capacitySlotsFollowThePriorityRule(@ForAll @From(supplier = MoeCases.All.class) MoeCase c) throws Exception {
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            Oracle o = Oracle.of(c);
            try (Calls call = Calls.forward(b, c)) {
                RoutingChecks.capacity(o, call.routing);
                ReferenceForward on = o.on(call.routing);
                RoutingChecks.slots(o, call.routing, on);
            }
        });
    }

    /** load counts the assignments chosen per expert and kept those kept, as the oracle counts the same routing. 200 tries. */
    @Property(tries = 200)
    default void loadAndKeptCountTheRouting(@ForAll @From(supplier = MoeCases.All.class) MoeCase c) throws Exception {
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            Oracle o = Oracle.of(c);
            try (Calls call = Calls.forward(b, c)) {
                RoutingChecks.counts(o, call.routing, o.on(call.routing));
            }
        });
    }

    /**
     * The gates are the oracle's, recomputed in double on the backend's routing (NONE: p;
     * RENORMALIZE before or after capacity; noisy top-k: softmax of the selected H; expert choice:
     * s), within {@link Tolerances#gates}; dropped entries exactly 0. 300 tries.
     */
    @Property(tries = 300)
    default void gatesMatchTheOracleOnTheBackendsRouting(@ForAll @From(supplier = MoeCases.All.class) MoeCase c) throws Exception {
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            Oracle o = Oracle.of(c);
            try (Calls call = Calls.forward(b, c)) {
                RoutingChecks.gates(o, call.routing, o.on(call.routing), tolerances().gates(o.sizes()));
            }
        });
    }

    /**
     * Where capacity drops some of a token's choices, the gates are still the oracle's: the
     * dropped ones 0, the kept ones renormalised before capacity (their share of all k) or after
     * (among the kept) as configured. Token choice with k at least 2 and C of 1 to 3. 200 tries.
     */
    @Property(tries = 200)
    default void gatesMatchTheOracleWhereCapacityDrops(@ForAll @From(supplier = MoeCases.TokenChoiceWithDrops.class) MoeCase c)
            throws Exception {
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            Oracle o = Oracle.of(c);
            try (Calls call = Calls.forward(b, c)) {
                RoutingChecks.gates(o, call.routing, o.on(call.routing), tolerances().gates(o.sizes()));
            }
        });
    }
}

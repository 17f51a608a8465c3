package io.github.moe4j.conformance;

import io.github.moe4j.api.MoeLosses;
import io.github.moe4j.reference.ReferenceForward;

/** Checks shared by several contracts: expected exceptions and the whole forward comparison. */
final class Robustness {
    private Robustness() {}

    /** Something that should throw. */
    @FunctionalInterface
    interface Call {
        /** Runs it. */
        void run() throws Exception;
    }

    /** Asserts that {@code call} throws an exception of {@code type} (or a subtype). */
    static void expect(Class<? extends Throwable> type, String what, Object context, Call call) {
        try {
            call.run();
        } catch (Throwable t) {
            if (type.isInstance(t)) {
                return;
            }
            AssertionErrorWithCase e = new AssertionErrorWithCase(what + " should throw " + type.getSimpleName() + " but threw " + t, context);
            e.initCause(t);
            throw e;
        }
        throw new AssertionErrorWithCase(what + " should throw " + type.getSimpleName() + " but returned normally", context);
    }

    /** Every forward check: routing shape, capacity, selection, slots, counts, gates, output and losses. */
    static void wholeForward(BackendContract contract, Oracle o, Calls call) {
        Object c = o.context();
        RoutingChecks.structure(o, call.routing);
        RoutingChecks.capacity(o, call.routing);
        RoutingChecks.selection(o, call.routing);
        ReferenceForward on = o.on(call.routing);
        RoutingChecks.slots(o, call.routing, on);
        RoutingChecks.counts(o, call.routing, on);
        Tolerances tol = contract.tolerances();
        Tolerances.Sizes s = o.sizes();
        RoutingChecks.gates(o, call.routing, on, tol.gates(s));
        Compare.floatsReport("output [T, d]", on.y(), call.forward.output().toDoubleArray(), call.forward.output().shape(),
                tol.output(s), CancellingTerms.outputScale(on)).assertPassed(c);
        MoeLosses want = on.losses();
        MoeLosses got = call.forward.losses();
        Compare.scalar("losses.aux", want.aux(), got.aux(), tol.aux(s), 1, c);
        Compare.scalar("losses.z", want.z(), got.z(), tol.z(s), 1, c);
        Compare.scalar("losses.importance", want.importance(), got.importance(), tol.importance(s), 1, c);
        Compare.scalar("losses.load", want.load(), got.load(), tol.load(s), 1, c);
        Compare.scalar("losses.total", want.total(), got.total(), tol.total(s, o.config().losses(), want), 1, c);
    }
}

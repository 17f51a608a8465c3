package io.github.moe4j.conformance;

import io.github.moe4j.api.MoeLosses;
import io.github.moe4j.conformance.Coverage.Direction;
import io.github.moe4j.reference.ReferenceForward;
import net.jqwik.api.ForAll;
import net.jqwik.api.From;
import net.jqwik.api.Property;

/**
 * The forward pass (SPEC §1–§8, §11): given the backend's own routing, the oracle's
 * {@code forwardWithRouting} output and every loss match the backend's within the tolerance model.
 */
public interface ForwardContract extends BackendContract {

    /** The output y [T, d] matches the oracle's on the backend's routing within {@link Tolerances#output}. 300 tries. */
    @Property(tries = 300)
    default void outputMatchesTheOracleOnTheBackendsRouting(@ForAll @From(supplier = MoeCases.All.class) MoeCase c) throws Exception {
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            Oracle o = Oracle.of(c);
            try (Calls call = Calls.forward(b, c)) {
                ReferenceForward on = o.on(call.routing);
                Compare.floatsReport("output [T, d]", on.y(), call.forward.output().toDoubleArray(), call.forward.output().shape(),
                        tolerances().output(o.sizes()), CancellingTerms.outputScale(on)).assertPassed(c);
            }
        });
    }

    /**
     * Every loss, unweighted, and the weighted total match the oracle's on the backend's routing:
     * aux (SPEC §5), z, importance and load (§6), each within its own tolerance. 300 tries.
     */
    @Property(tries = 300)
    default void lossesMatchTheOracleOnTheBackendsRouting(@ForAll @From(supplier = MoeCases.All.class) MoeCase c) throws Exception {
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            Oracle o = Oracle.of(c);
            try (Calls call = Calls.forward(b, c)) {
                MoeLosses want = o.on(call.routing).losses();
                MoeLosses got = call.forward.losses();
                Tolerances tol = tolerances();
                Tolerances.Sizes s = o.sizes();
                Compare.scalar("losses.aux", want.aux(), got.aux(), tol.aux(s), 1, c);
                Compare.scalar("losses.z", want.z(), got.z(), tol.z(s), 1, c);
                Compare.scalar("losses.importance", want.importance(), got.importance(), tol.importance(s), 1, c);
                Compare.scalar("losses.load", want.load(), got.load(), tol.load(s), 1, c);
                Compare.scalar("losses.total", want.total(), got.total(), tol.total(s, c.config().losses(), want), 1, c);
            }
        });
    }

    /**
     * In training, with jitter (to the router, or to the experts too), GShard's RANDOM second
     * expert or noisy top-k's learned noise, every forward quantity matches the oracle, which draws
     * the same noise from the seed and step ({@link io.github.moe4j.api.Noise}). 200 tries.
     */
    @Property(tries = 200)
    default void trainingNoiseIsTheOraclesNoise(@ForAll @From(supplier = MoeCases.TrainingNoise.class) MoeCase c) throws Exception {
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            Oracle o = Oracle.of(c);
            try (Calls call = Calls.forward(b, c)) {
                Robustness.wholeForward(this, o, call);
            }
        });
    }
}

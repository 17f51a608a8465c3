package io.github.moe4j.conformance;

import io.github.moe4j.api.Freeze;
import io.github.moe4j.api.MoeGradients;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.conformance.Coverage.Direction;
import io.github.moe4j.reference.ReferenceForward;
import java.util.Set;
import net.jqwik.api.ForAll;
import net.jqwik.api.From;
import net.jqwik.api.Property;
import org.opentest4j.AssertionFailedError;

/**
 * The backward pass (SPEC §10): every gradient matches the oracle's backward on the backend's own
 * routing, through the {@link MoeLayer} API; a component is null exactly where the oracle's is; a
 * frozen group gets none and the input's gradient is still exact. The oracle is the reference's
 * {@link MoeLayer#backward}; where it is not available the properties fail, they are never skipped.
 */
public interface BackwardContract extends BackendContract {

    /** Every gradient component of \( \sum dY \odot y + \) the weighted losses, within {@link Tolerances#gradients}. 200 tries. */
    @Property(tries = 200)
    default void gradientsMatchTheOracleOnTheBackendsRouting(@ForAll @From(supplier = MoeCases.All.class) MoeCase c) throws Exception {
        checkGradients(this, c, Set.of());
    }

    /**
     * With {@link Freeze#ROUTER}, {@link Freeze#EXPERTS} or both, the frozen components are null and
     * every other one, the input's included, matches the oracle's. 150 tries.
     */
    @Property(tries = 150)
    default void frozenGroupsGetNoGradient(@ForAll @From(supplier = MoeCases.All.class) MoeCase c, @ForAll Set<Freeze> frozen)
            throws Exception {
        checkGradients(this, c, frozen);
    }

    /** backward rejects a dOutput whose shape is not [T, d] with {@link IllegalArgumentException}. 30 tries. */
    @Property(tries = 30)
    default void backwardRejectsADOutputOfTheWrongShape(@ForAll @From(supplier = MoeCases.All.class) MoeCase c) throws Exception {
        Suite.certify(this, c.config(), Direction.BACKWARD, b -> {
            try (Calls call = Calls.forward(b, c)) {
                Tensor wrong = Tensor.zeros(c.tokens() + 1, c.config().modelDim());
                Robustness.expect(IllegalArgumentException.class, "backward with dOutput of shape [T + 1, d]", c,
                        () -> call.layer.backward(call.forward, wrong, Set.of()));
            }
        });
    }

    /** backward rejects the forward result of another layer with {@link IllegalArgumentException} (MoeLayer's contract). 30 tries. */
    @Property(tries = 30)
    default void backwardRejectsTheForwardOfAnotherLayer(@ForAll @From(supplier = MoeCases.All.class) MoeCase c) throws Exception {
        Suite.certify(this, c.config(), Direction.BACKWARD, b -> {
            try (Calls call = Calls.forward(b, c); MoeLayer other = b.createLayer(c.config(), c.weights())) {
                Robustness.expect(IllegalArgumentException.class, "backward of a layer with another layer's forward result", c,
                        () -> other.backward(call.forward, c.dOutput(), Set.of()));
            }
        });
    }

    private static void checkGradients(BackendContract contract, MoeCase c, Set<Freeze> frozen) throws Exception {
        Suite.certify(contract, c.config(), Direction.BACKWARD, b -> {
            Oracle o = Oracle.of(c);
            try (Calls call = Calls.forward(b, c)) {
                MoeGradients got = call.layer.backward(call.forward, c.dOutput(), frozen);
                Gradients.frozenAreNull(got, frozen, c);
                ReferenceForward on = o.on(call.routing);
                MoeGradients want = oracleGradients(o, on, c.dOutput(), frozen);
                Gradients.compare(want, got, contract.tolerances().gradients(o.sizes()), frozen, CancellingTerms.of(on, c.dOutput().toDoubleArray()), c);
            }
        });
    }

    /** The oracle's gradients; an oracle without a backward pass fails the property loudly. */
    private static MoeGradients oracleGradients(Oracle o, ReferenceForward on, Tensor dOutput, Set<Freeze> frozen) {
        try {
            return o.backward(on, dOutput, frozen);
        } catch (UnsupportedOperationException e) {
            throw new AssertionFailedError("the oracle has no backward pass, so gradients cannot be certified: " + e.getMessage(), e);
        }
    }

}

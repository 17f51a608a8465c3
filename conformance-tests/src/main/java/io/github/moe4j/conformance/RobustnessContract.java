package io.github.moe4j.conformance;

import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeGradients;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeLosses;
import io.github.moe4j.api.NonFiniteException;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.conformance.Coverage.Direction;
import java.util.Set;
import net.jqwik.api.ForAll;
import net.jqwik.api.From;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;

/**
 * Robustness (DESIGN "The conformance suite"): bad shapes and options are rejected with
 * {@link IllegalArgumentException}, non-finite inputs with {@link NonFiniteException}; edge sizes
 * (T = 0, T = 1, E = 1, k = E, C = 0) work and match the oracle; the same input twice gives
 * bit-identical output, routing, losses and gradients.
 */
public interface RobustnessContract extends BackendContract {

    /** An input of shape [T, d + 1], [T] or [T, d, 1] is rejected with {@link IllegalArgumentException}. 30 tries. */
    @Property(tries = 30)
    default void rejectsAnInputOfTheWrongShape(@ForAll @From(supplier = MoeCases.All.class) MoeCase c,
                                               @ForAll @IntRange(min = 0, max = 2) int variant) throws Exception {
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            int t = c.tokens();
            int d = c.config().modelDim();
            Tensor wrong = switch (variant) {
                case 0 -> Tensor.zeros(t, d + 1);
                case 1 -> Tensor.zeros(t);
                default -> Tensor.zeros(t, d, 1);
            };
            try (MoeLayer layer = b.createLayer(c.config(), c.weights())) {
                Robustness.expect(IllegalArgumentException.class, "forward with input of shape " + java.util.Arrays.toString(wrong.shape())
                        + " (d = " + d + ")", c, () -> layer.forward(wrong, c.options()).close());
            }
        });
    }

    /** A NaN, +infinity or -infinity anywhere in the input is rejected with {@link NonFiniteException}. 40 tries. */
    @Property(tries = 40)
    default void rejectsANonFiniteInput(@ForAll @From(supplier = MoeCases.OneToken.class) MoeCase one,
                                        @ForAll @IntRange(min = 0, max = 2) int kind, @ForAll @IntRange(min = 0, max = 1000) int position)
            throws Exception {
        Suite.certify(this, one.config(), Direction.FORWARD, b -> {
            float[] x = one.input().toArray();
            float bad = kind == 0 ? Float.NaN : kind == 1 ? Float.POSITIVE_INFINITY : Float.NEGATIVE_INFINITY;
            x[position % x.length] = bad;
            Tensor input = Tensor.of(x, 1, one.config().modelDim());
            try (MoeLayer layer = b.createLayer(one.config(), one.weights())) {
                Robustness.expect(NonFiniteException.class, "forward with input[" + (position % x.length) + "] = " + bad, one,
                        () -> layer.forward(input, one.options()).close());
            }
        });
    }

    /**
     * Options that do not fit the call are rejected with {@link IllegalArgumentException}: G not
     * dividing T, a padding mask of the wrong length, a mask value other than 0 or 1. 30 tries.
     */
    @Property(tries = 30)
    default void rejectsOptionsThatDoNotFitTheCall(@ForAll @From(supplier = MoeCases.OneToken.class) MoeCase c,
                                                   @ForAll @IntRange(min = 0, max = 2) int variant) throws Exception {
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            ForwardOptions o = ForwardOptions.inference();
            ForwardOptions wrong = switch (variant) {
                case 0 -> o.withGroups(2);
                case 1 -> o.withPaddingMask(Tensor.of(new float[] {1, 1}, 2));
                default -> o.withPaddingMask(Tensor.of(new float[] {0.5f}, 1));
            };
            try (MoeLayer layer = b.createLayer(c.config(), c.weights())) {
                Robustness.expect(IllegalArgumentException.class, "forward of 1 token with " + wrong, c,
                        () -> layer.forward(c.input(), wrong).close());
            }
        });
    }

    /** T = 0: an empty [0, d] output, an empty routing, and the oracle's losses. 30 tries. */
    @Property(tries = 30)
    default void handlesNoTokens(@ForAll @From(supplier = MoeCases.NoTokens.class) MoeCase c) throws Exception {
        wholeForward(this, c);
    }

    /** T = 1 matches the oracle in every forward quantity. 60 tries. */
    @Property(tries = 60)
    default void handlesOneToken(@ForAll @From(supplier = MoeCases.OneToken.class) MoeCase c) throws Exception {
        wholeForward(this, c);
    }

    /** E = 1 matches the oracle in every forward quantity. 60 tries. */
    @Property(tries = 60)
    default void handlesOneExpert(@ForAll @From(supplier = MoeCases.OneExpert.class) MoeCase c) throws Exception {
        wholeForward(this, c);
    }

    /** k = E matches the oracle in every forward quantity. 60 tries. */
    @Property(tries = 60)
    default void handlesKEqualToE(@ForAll @From(supplier = MoeCases.AllExperts.class) MoeCase c) throws Exception {
        wholeForward(this, c);
    }

    /** Capacity.fixed(0) drops everything: every slot -1, every gate and kept count 0, the output exactly 0. 60 tries. */
    @Property(tries = 60)
    default void zeroCapacityDropsEverything(@ForAll @From(supplier = MoeCases.ZeroCapacity.class) MoeCase c) throws Exception {
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            try (Calls call = Calls.forward(b, c)) {
                float[] y = call.forward.output().toArray();
                for (int i = 0; i < y.length; i++) {
                    if (y[i] != 0f) {
                        throw Compare.failure("output[" + i + "] = " + y[i] + " but capacity 0 keeps nothing, so the output is exactly 0", c);
                    }
                }
                int[] slots = call.routing.slots();
                float[] gates = call.routing.gates();
                for (int i = 0; i < slots.length; i++) {
                    if (slots[i] != -1 || gates[i] != 0f) {
                        throw Compare.failure("routing entry " + i + " has slot " + slots[i] + " and gate " + gates[i]
                                + " but capacity 0 keeps nothing (slot -1, gate 0)", c);
                    }
                }
                Compare.exactly("routing.kept", new int[c.config().experts()], call.routing.kept(), new int[] {c.config().experts()}, c);
            }
        });
    }

    /** The same input twice, on the same layer and on a new one, gives bit-identical output, routing and losses. 60 tries. */
    @Property(tries = 60)
    default void forwardIsBitReproducible(@ForAll @From(supplier = MoeCases.All.class) MoeCase c) throws Exception {
        Suite.certify(this, c.config(), Direction.FORWARD, b -> {
            try (MoeLayer layer = b.createLayer(c.config(), c.weights()); MoeLayer fresh = b.createLayer(c.config(), c.weights());
                 MoeForward first = layer.forward(c.input(), c.options()); MoeForward second = layer.forward(c.input(), c.options());
                 MoeForward third = fresh.forward(c.input(), c.options())) {
                for (MoeForward again : new MoeForward[] {second, third}) {
                    String which = again == second ? "second call on the same layer" : "first call on a new layer";
                    Compare.bits("output, " + which, first.output(), again.output(), c);
                    if (!first.routing().equals(again.routing())) {
                        throw Compare.failure("routing of the " + which + " differs from the first call's: " + again.routing() + " vs "
                                + first.routing(), c);
                    }
                    sameLosses(first.losses(), again.losses(), which, c);
                }
            }
        });
    }

    /** The same forward and dOutput twice give bit-identical gradients. 40 tries. */
    @Property(tries = 40)
    default void backwardIsBitReproducible(@ForAll @From(supplier = MoeCases.All.class) MoeCase c) throws Exception {
        Suite.certify(this, c.config(), Direction.BACKWARD, b -> {
            try (MoeLayer layer = b.createLayer(c.config(), c.weights()); MoeForward f1 = layer.forward(c.input(), c.options());
                 MoeForward f2 = layer.forward(c.input(), c.options())) {
                MoeGradients g1 = layer.backward(f1, c.dOutput(), Set.of());
                MoeGradients g2 = layer.backward(f2, c.dOutput(), Set.of());
                for (Gradients.Component comp : Gradients.ALL) {
                    Tensor a = comp.get().apply(g1);
                    Tensor z = comp.get().apply(g2);
                    if ((a == null) != (z == null)) {
                        throw Compare.failure("gradient." + comp.name() + " is null in one call only", c);
                    }
                    if (a != null) {
                        Compare.bits("gradient." + comp.name() + ", second call", a, z, c);
                    }
                }
            }
        });
    }

    private static void sameLosses(MoeLosses a, MoeLosses b, String which, Object c) {
        double[] x = {a.aux(), a.z(), a.importance(), a.load(), a.total()};
        double[] y = {b.aux(), b.z(), b.importance(), b.load(), b.total()};
        String[] names = {"aux", "z", "importance", "load", "total"};
        for (int i = 0; i < x.length; i++) {
            if (Double.doubleToRawLongBits(x[i]) != Double.doubleToRawLongBits(y[i])) {
                throw Compare.failure("losses." + names[i] + " of the " + which + " is " + y[i] + " but the first call's " + x[i]
                        + " (compared bit for bit)", c);
            }
        }
    }

    private static void wholeForward(BackendContract contract, MoeCase c) throws Exception {
        Suite.certify(contract, c.config(), Direction.FORWARD, b -> {
            Oracle o = Oracle.of(c);
            try (Calls call = Calls.forward(b, c)) {
                Robustness.wholeForward(contract, o, call);
            }
        });
    }

}

package io.github.moe4j.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.Freeze;
import io.github.moe4j.api.Priority;
import java.util.EnumSet;
import java.util.Set;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;

/**
 * Freezing (SPEC §10, FLAN-MoE): a frozen group's gradients are null and its weight-gradient work
 * is skipped, which the backward's work counts show; every other gradient, the input's included,
 * is bit for bit what it is without freezing.
 */
class FreezeProperties {

    /** Each of the four freeze sets against none, on every router, capacity, priority and expert kind. */
    @Property(tries = 300)
    void frozenGroupsGetNoGradientAndSkipTheirWork(@ForAll BackwardCase.RouterKind router, @ForAll BackwardCase.CapacityKind capacity,
                                                  @ForAll Priority priority, @ForAll Activation activation, @ForAll long seed) {
        BackwardCase c = BackwardCase.random(router, capacity, priority, activation, seed);
        ReferenceLayer layer = c.layer();
        ReferenceForward f = layer.forward(c.x(), c.tokens(), c.options());
        ReferenceGradients open = layer.backward(f, c.dY(), EnumSet.noneOf(Freeze.class));
        boolean anyKept = java.util.Arrays.stream(f.plan().kept()).sum() > 0;
        assertEquals(anyKept, open.work().expertWeightMultiplyAdds() > 0, "expert weight-gradient work happens iff a row was kept");
        assertTrue(open.work().routerWeightMultiplyAdds() > 0, "router weight-gradient work always happens (T ≥ 1)");

        for (Set<Freeze> frozen : java.util.List.of(EnumSet.of(Freeze.ROUTER), EnumSet.of(Freeze.EXPERTS), EnumSet.allOf(Freeze.class))) {
            ReferenceGradients g = layer.backward(f, c.dY(), frozen);
            assertArrayEquals(open.input(), g.input(), "the input's gradient is exact with " + frozen + " frozen");
            boolean routerFrozen = frozen.contains(Freeze.ROUTER);
            boolean expertsFrozen = frozen.contains(Freeze.EXPERTS);
            assertEquals(routerFrozen ? 0 : open.work().routerWeightMultiplyAdds(), g.work().routerWeightMultiplyAdds(), "router work " + frozen);
            assertEquals(expertsFrozen ? 0 : open.work().expertWeightMultiplyAdds(), g.work().expertWeightMultiplyAdds(), "expert work " + frozen);
            check(routerFrozen, open.router(), g.router());
            check(routerFrozen, open.routerBias(), g.routerBias());
            check(routerFrozen, open.noiseRouter(), g.noiseRouter());
            check(expertsFrozen, open.wIn(), g.wIn());
            check(expertsFrozen, open.wGate(), g.wGate());
            check(expertsFrozen, open.wOut(), g.wOut());
            check(expertsFrozen, open.bIn(), g.bIn());
            check(expertsFrozen, open.bOut(), g.bOut());
        }
    }

    private static void check(boolean frozen, double[] open, double[] got) {
        if (frozen) {
            assertNull(got);
        } else {
            assertArrayEquals(open, got);
        }
    }
}

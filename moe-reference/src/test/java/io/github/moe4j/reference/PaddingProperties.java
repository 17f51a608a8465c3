package io.github.moe4j.reference;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.PaddingPolicy;
import io.github.moe4j.reference.ReferenceCases.CapacityKind;
import io.github.moe4j.reference.ReferenceCases.RouterKind;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.stream.IntStream;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.statistics.Statistics;

/**
 * The padding mask (SPEC §4a; research §14.11 item 25): padding tokens never count in the losses;
 * under {@link PaddingPolicy#ROUTED} they are routed like real tokens, under
 * {@link PaddingPolicy#NOT_ROUTED} they choose nothing, take no capacity and output exactly 0.
 * One group throughout (a group of only padding tokens is a separate question).
 */
class PaddingProperties {

    static int[] realRows(MoeCase c) {
        return IntStream.range(0, c.tokens()).filter(c::isReal).toArray();
    }

    static void labelPadding(MoeCase c) {
        long padded = IntStream.range(0, c.tokens()).filter(t -> !c.isReal(t)).count();
        Statistics.label("padding").collect(padded == 0 ? "none" : padded == c.tokens() ? "all" : "some");
        Statistics.label("padding").coverage(cov -> cov.check("some").percentage(p -> p >= 40));
    }

    @Provide
    Arbitrary<MoeCase> routedPaddingCases() {
        return ReferenceCases.paddedCases().map(c -> c.withConfig(c.config().toBuilder().padding(PaddingPolicy.ROUTED).build()));
    }

    /** ROUTED: the mask changes no routing or output, and the losses are those of a call with only the real tokens. */
    @Property(tries = 200)
    void routedPaddingChangesOnlyTheLosses(@ForAll("routedPaddingCases") MoeCase c) {
        ReferenceCases.collectRouterAndCapacity(c, EnumSet.allOf(RouterKind.class), EnumSet.allOf(CapacityKind.class), 4);
        labelPadding(c);
        ReferenceForward masked = c.forward();
        ReferenceForward unmasked = c.withPadding(null).forward();
        Compare.exactly("selection", unmasked.plan().selected(), masked.plan().selected(), c);
        Compare.exactly("slots", unmasked.plan().slot(), masked.plan().slot(), c);
        Compare.bitwise("gates", unmasked.plan().gate(), masked.plan().gate(), c);
        Compare.bitwise("y", unmasked.y(), masked.y(), c);
        assertSameLosses(c.forwardRows(realRows(c), 1), masked, c);
    }

    static void assertSameLosses(ReferenceForward want, ReferenceForward got, MoeCase c) {
        Compare.close("L_aux against the real tokens alone", want.losses().aux(), got.losses().aux(), Compare.REORDERED, c);
        Compare.close("L_z against the real tokens alone", want.losses().z(), got.losses().z(), Compare.REORDERED, c);
        Compare.close("L_importance against the real tokens alone", want.losses().importance(), got.losses().importance(), Compare.REORDERED, c);
        Compare.close("L_load against the real tokens alone", want.losses().load(), got.losses().load(), Compare.REORDERED, c);
    }

    /**
     * NOT_ROUTED cases whose capacity does not depend on whether padding counts in T: dropless, or a
     * fixed C no larger than the number of real tokens.
     */
    @Provide
    Arbitrary<MoeCase> unroutedPaddingCases() {
        return ReferenceCases.paddedCases().map(c -> c.withConfig(c.config().toBuilder().padding(PaddingPolicy.NOT_ROUTED).build()))
                .flatMap(c -> {
                    Arbitrary<Capacity> fixed = Arbitraries.integers().between(0, realRows(c).length).map(Capacity::fixed);
                    Arbitrary<Capacity> capacity = c.isExpertChoice() ? fixed : Arbitraries.oneOf(fixed, Arbitraries.just(Capacity.dropless()));
                    return capacity.map(c::withCapacity);
                });
    }

    /** NOT_ROUTED: padding chooses nothing and outputs exactly 0, and the real tokens route and compute as in a call without the padding. */
    @Property(tries = 200)
    void unroutedPaddingOutputsZeroAndTakesNoCapacity(@ForAll("unroutedPaddingCases") MoeCase c) {
        ReferenceCases.collectRouterAndCapacity(c, EnumSet.allOf(RouterKind.class), EnumSet.of(CapacityKind.FIXED), 4);
        labelPadding(c);
        ReferenceForward masked = c.forward();
        int[] real = realRows(c);
        ReferenceForward alone = c.forwardRows(real, 1);
        int m = c.choices();
        int d = c.d();
        for (int t = 0; t < c.tokens(); t++) {
            if (!c.isReal(t)) {
                int[] none = new int[m];
                Arrays.fill(none, -1);
                Compare.exactly("experts of padding token " + t, none, GatingProperties.ints(masked.plan().selected(), t, m), c);
                Compare.exactly("slots of padding token " + t, none, GatingProperties.ints(masked.plan().slot(), t, m), c);
                Compare.bitwise("y of padding token " + t, new double[d], NaiveMoe.row(masked.y(), t, d), c);
            }
        }
        Compare.exactly("selection of the real tokens", alone.plan().selected(), LayerProperties.intRows(masked.plan().selected(), m, real), c);
        Compare.exactly("slots of the real tokens", alone.plan().slot(), LayerProperties.intRows(masked.plan().slot(), m, real), c);
        Compare.bitwise("gates of the real tokens", alone.plan().gate(), MoeCase.rows(masked.plan().gate(), m, real), c);
        Compare.bitwise("y of the real tokens", alone.y(), MoeCase.rows(masked.y(), d, real), c);
        Compare.exactly("kept per expert", alone.plan().kept(), masked.plan().kept(), c);
        assertTrue(alone.plan().capacity() == masked.plan().capacity(),
                "capacity " + masked.plan().capacity() + " vs " + alone.plan().capacity() + " alone; " + c);
        assertSameLosses(alone, masked, c);
    }
}

package io.github.moe4j.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.LossWeights;
import io.github.moe4j.api.MoeLosses;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The tolerance model's shape: float32's u, bounds that grow with the reductions, reasons, and SPEC §11's margin. */
class TolerancesTest {
    private static final Tolerances.Sizes SMALL = new Tolerances.Sizes(4, 8, 4, 2, 8, 8, 3, 1);
    private static final Tolerances.Sizes LARGE = new Tolerances.Sizes(64, 256, 4, 2, 8, 8, 3, 1);

    @Test
    void float32UnitRoundoffIsTwoToTheMinus24() {
        assertEquals(Math.scalb(1.0, -24), Tolerances.FP32.unitRoundoff());
        assertEquals(1 + Math.scalb(1.0, -23), Math.nextUp(1f), 0, "u is half the distance from 1 to the next float");
    }

    /**
     * Below float32's smallest normal number a value is underflow: 0 for the oracle's 3e-79 (a GELU
     * far in its tail) is accepted; 0 for 1e-30, which float32 represents, is not.
     */
    @Test
    void float32BoundsHaveAnUnderflowFloorAndNoMore() {
        Tolerance t = Tolerances.FP32.output(SMALL);
        assertEquals(Tolerances.SAFETY * Float.MIN_NORMAL, t.floor());
        assertTrue(t.accepts(3e-79, 0, 3e-79));
        assertTrue(!t.accepts(1e-30, 0, 1e-30));
        assertTrue(t.toString().contains(" + 9.40e-38 ("), t.toString());
    }

    @Test
    void boundsGrowWithTheLongestReduction() {
        Tolerances t = Tolerances.FP32;
        assertTrue(t.output(LARGE).rel() > t.output(SMALL).rel());
        assertTrue(t.gates(LARGE).abs() > t.gates(SMALL).abs());
        assertTrue(t.gradients(LARGE).rel() > t.gradients(SMALL).rel());
    }

    @Test
    void gradientsAreLooserThanTheOutputByTheSumOverTokens() {
        Tolerances t = Tolerances.FP32;
        assertTrue(t.gradients(SMALL).rel() > t.output(SMALL).rel());
    }

    @Test
    void everyBoundStatesItsReason() {
        Tolerances t = Tolerances.FP32;
        MoeLosses l = new MoeLosses(1, 1, 1, 1, 1);
        for (Tolerance x : List.of(t.gates(SMALL), t.output(SMALL), t.aux(SMALL), t.z(SMALL), t.importance(SMALL), t.load(SMALL),
                t.total(SMALL, LossWeights.of().aux(1).z(1), l), t.gradients(SMALL))) {
            assertFalse(x.reason().isBlank(), x.toString());
            assertTrue(x.reason().contains("float32"), x.toString());
        }
    }

    @Test
    void float32BoundsAreFarBelowTheSizeOfRealBugs() {
        // a missing renormalisation, a wrong f convention or an ignored mask change values by percent, not by 1e-4
        Tolerances t = Tolerances.FP32;
        assertTrue(t.output(SMALL).rel() < 1e-4, t.output(SMALL).toString());
        assertTrue(t.gates(SMALL).abs() < 1e-4, t.gates(SMALL).toString());
        assertTrue(t.aux(SMALL).abs() < 1e-3, t.aux(SMALL).toString());
    }

    @Test
    void coarserFormatsGetProportionallyWiderBounds() {
        Tolerances tf32 = Tolerances.forUnitRoundoff("tf32", Math.scalb(1.0, -11));
        assertEquals(Math.scalb(1.0, 13), tf32.output(SMALL).rel() / Tolerances.FP32.output(SMALL).rel(), 1e-9);
    }

    @Test
    void routingMarginIsSpec11() {
        assertEquals(1e-4 * (1 + 2.5), Tolerances.routingMargin(2.5), 0);
    }
}

package io.github.moe4j.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.Support;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The configurations have the documented shapes and the FLOP formula counts what it says. No timing. */
class BenchConfigsTest {

    private static void assertShape(String name, int t, int d, int h, int e, int k, Activation a) {
        BenchConfigs.Shape s = BenchConfigs.shape(name);
        assertEquals(List.of(t, d, h, e, k), List.of(s.tokens(), s.modelDim(), s.hiddenDim(), s.experts(), s.topK()), name);
        assertEquals(a, s.config().activation(), name);
    }

    @Test
    void configurationsHaveTheDocumentedShapes() {
        assertShape("S", 512, 256, 1024, 8, 2, Activation.SWIGLU);
        assertShape("M", 2048, 512, 2048, 8, 2, Activation.SWIGLU);
        assertShape("L", 4096, 1024, 4096, 8, 2, Activation.SWIGLU);
        assertShape("W", 2048, 512, 1024, 64, 2, Activation.SWIGLU);
        assertShape("Switch", 2048, 512, 2048, 16, 1, Activation.RELU);
        assertShape("E8", 512, 256, 512, 8, 2, Activation.SWIGLU);
        assertShape("E64", 512, 256, 512, 64, 2, Activation.SWIGLU);
        assertShape("E8-T2048", 2048, 256, 512, 8, 2, Activation.SWIGLU);
        assertShape("E64-T2048", 2048, 256, 512, 64, 2, Activation.SWIGLU);
        assertEquals(List.of("S", "M", "L", "W", "Switch", "E8", "E64", "E8-T2048", "E64-T2048"), BenchConfigs.names());
    }

    @Test
    void switchHasCapacity160AndTheMixtralShapesDropNothing() {
        assertEquals(160, BenchConfigs.shape("Switch").config().capacityPerExpert(2048));
        assertEquals(io.github.moe4j.api.Routing.UNLIMITED, BenchConfigs.shape("S").config().capacityPerExpert(512));
    }

    @Test
    void flopFormula() {
        BenchConfigs.Shape s = BenchConfigs.shape("S");
        // 2 * T*k * d * h * 3 GEMMs
        assertEquals(2.0 * 512 * 2 * 256 * 1024 * 3, s.nominalForwardFlops());
        assertEquals(3 * s.nominalForwardFlops(), BenchConfigs.forwardBackwardFlops(s.config(), 1024));
        BenchConfigs.Shape sw = BenchConfigs.shape("Switch");
        assertEquals(2.0 * 2048 * 512 * 2048 * 2, sw.nominalForwardFlops());
        assertEquals(2.0 * 100 * 512 * 2048 * 2, BenchConfigs.forwardFlops(sw.config(), 100));
        assertEquals(2.0 * 512 * 256 * 64, BenchConfigs.routerFlops(BenchConfigs.shape("E64").config(), 512));
    }

    @Test
    void inputsAndWeightsHaveTheLayerShapes() {
        BenchConfigs.Shape s = BenchConfigs.shape("E8");
        assertEquals(List.of(512, 256), List.of(BenchConfigs.input(s).dim(0), BenchConfigs.input(s).dim(1)));
        assertEquals(BenchConfigs.input(s), BenchConfigs.input(s));
        assertEquals(3, BenchConfigs.weights(s).wIn().rank());
        assertEquals(8, BenchConfigs.weights(s).wIn().dim(0));
    }

    @Test
    void keptAssignmentsOfTheSmallConfiguration() {
        assertEquals(1024, BenchPlan.keptAssignments(BenchConfigs.shape("E8")));
    }

    @Test
    void unknownNamesAndUnsupportedCasesGiveReasons() {
        assertThrows(IllegalArgumentException.class, () -> BenchConfigs.shape("XL"));
        assertTrue(BenchPlan.skipReason("no-such-backend", "S", false).contains("no backend named"));
        assertNull(BenchPlan.skipReason("reference", "S", true));
        assertTrue(BenchPlan.reason(Support.forwardOnly("no backward here"), true).contains("no backward here"));
        assertNull(BenchPlan.reason(Support.forwardOnly("no backward here"), false));
    }
}

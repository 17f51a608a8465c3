package io.github.moe4j.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class MoeWeightsTest {
    private static final MoeConfig MIXTRAL = Presets.mixtral().modelDim(4).hiddenDim(6).experts(3).build();

    @Test
    void randomWeightsFitTheConfigurationAndDependOnlyOnTheSeed() {
        MoeWeights w = MoeWeights.random(MIXTRAL, 5).validate(MIXTRAL);
        assertEquals(w, MoeWeights.random(MIXTRAL, 5));
        assertNotEquals(w.router(), MoeWeights.random(MIXTRAL, 6).router());
        assertNotNull(w.wGate());
        assertNull(w.bIn());
        assertNull(w.noiseRouter());
    }

    @Test
    void missingGateProjectionIsNamedWithItsShape() {
        MoeWeights w = MoeWeights.random(MIXTRAL, 1);
        MoeWeights noGate = new MoeWeights(w.router(), null, null, w.wIn(), null, w.wOut(), null, null);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> noGate.validate(MIXTRAL));
        assertEquals("weights.wGate is missing; the configuration needs it with shape [experts, modelDim, hiddenDim] = [3, 4, 6]", e.getMessage());
    }

    @Test
    void wrongShapeIsNamed() {
        MoeWeights w = MoeWeights.random(MIXTRAL, 1);
        MoeWeights hfLayout = new MoeWeights(Tensor.zeros(3, 4), null, null, w.wIn(), w.wGate(), w.wOut(), null, null);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> hfLayout.validate(MIXTRAL));
        assertEquals("weights.router has shape [3, 4] but [modelDim, experts] = [4, 3] was expected", e.getMessage());
    }

    @Test
    void unusedComponentIsRejected() {
        MoeWeights w = MoeWeights.random(MIXTRAL, 1);
        MoeWeights extra = new MoeWeights(w.router(), Tensor.zeros(3), null, w.wIn(), w.wGate(), w.wOut(), null, null);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> extra.validate(MIXTRAL));
        assertEquals("weights.routerBias is present but the configuration does not use it (Hint: turn on the matching option or leave it null)", e.getMessage());
    }

    @Test
    void nonFiniteWeightIsReportedWithItsPosition() {
        MoeWeights w = MoeWeights.random(MIXTRAL, 1);
        float[] out = w.wOut().toArray();
        out[2 * 6 * 4 + 1 * 4 + 3] = Float.POSITIVE_INFINITY;
        MoeWeights bad = new MoeWeights(w.router(), null, null, w.wIn(), w.wGate(), Tensor.of(out, 3, 6, 4), null, null);
        NonFiniteException e = assertThrows(NonFiniteException.class, () -> bad.validate(MIXTRAL));
        assertEquals("weights.wOut has a non-finite value Infinity at [2, 1, 3] (flat index 55, shape [3, 6, 4])", e.getMessage());
    }
}

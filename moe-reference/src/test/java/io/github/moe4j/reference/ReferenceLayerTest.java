package io.github.moe4j.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeBackends;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.NonFiniteException;
import io.github.moe4j.api.Presets;
import io.github.moe4j.api.Routing;
import io.github.moe4j.api.Tensor;
import org.junit.jupiter.api.Test;

/** The reference through the public API: discovery, shapes, errors, and the float32 view of its results. */
class ReferenceLayerTest {
    private static final MoeConfig CONFIG = Presets.gshardTop2().modelDim(4).hiddenDim(8).experts(3).build();
    private static final MoeWeights WEIGHTS = MoeWeights.random(CONFIG, 3);

    private static Tensor input(int tokens) {
        float[] x = new float[tokens * 4];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) Math.sin(1.7 * i + 0.3);
        }
        return Tensor.of(x, tokens, 4);
    }

    @Test
    void isFoundByServiceLoaderAndIsTheBestWhenAlone() {
        assertEquals("reference", MoeBackends.describe().get(0).name());
        assertTrue(MoeBackends.describe().get(0).availability().available());
        try (MoeBackend backend = MoeBackends.best()) {
            assertEquals("reference", backend.name());
        }
    }

    @Test
    void wrongInputWidthIsNamed() {
        try (MoeLayer layer = ReferenceBackend.INSTANCE.createLayer(CONFIG, WEIGHTS)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> layer.forward(Tensor.zeros(5, 6), ForwardOptions.inference()));
            assertEquals("input has shape [5, 6] but [tokens, modelDim] = [5, 4] was expected", e.getMessage());
        }
    }

    @Test
    void nonFiniteInputIsReportedWithTokenAndFeature() {
        float[] x = input(5).toArray();
        x[3 * 4 + 2] = Float.NEGATIVE_INFINITY;
        try (MoeLayer layer = ReferenceBackend.INSTANCE.createLayer(CONFIG, WEIGHTS)) {
            NonFiniteException e = assertThrows(NonFiniteException.class,
                    () -> layer.forward(Tensor.of(x, 5, 4), ForwardOptions.inference()));
            assertEquals("input has a non-finite value -Infinity at [3, 2] (flat index 14, shape [5, 4])", e.getMessage());
        }
    }

    @Test
    void emptyBatchGivesEmptyOutput() {
        try (MoeLayer layer = ReferenceBackend.INSTANCE.createLayer(CONFIG, WEIGHTS);
             MoeForward f = layer.forward(Tensor.zeros(0, 4), ForwardOptions.inference())) {
            assertArrayEquals(new int[] {0, 4}, f.output().shape());
            assertEquals(0, f.routing().tokens());
            assertEquals(0.0, f.losses().total());
        }
    }

    @Test
    void float32ResultsAreTheDoubleResultsRoundedOnce() {
        ReferenceLayer layer = new ReferenceLayer(CONFIG, WEIGHTS);
        Tensor x = input(7);
        ReferenceForward exact = layer.forward(x.toDoubleArray(), 7, ForwardOptions.inference());
        MoeForward f = layer.forward(x, ForwardOptions.inference());
        float[] y = f.output().toArray();
        for (int i = 0; i < y.length; i++) {
            assertEquals((float) exact.y()[i], y[i]);
        }
        Routing r = f.routing();
        for (int t = 0; t < 7; t++) {
            for (int j = 0; j < 2; j++) {
                assertEquals(exact.plan().selected()[t * 2 + j], r.expert(t, j));
                assertEquals((float) exact.plan().gate()[t * 2 + j], r.gate(t, j));
                assertEquals(exact.plan().slot()[t * 2 + j], r.slot(t, j));
            }
        }
    }

    @Test
    void sameInputTwiceIsBitIdentical() {
        ReferenceLayer layer = new ReferenceLayer(CONFIG, WEIGHTS);
        MoeForward a = layer.forward(input(9), ForwardOptions.training(5, 1));
        MoeForward b = layer.forward(input(9), ForwardOptions.training(5, 1));
        assertEquals(a.output(), b.output());
        assertEquals(a.routing(), b.routing());
        assertEquals(a.losses(), b.losses());
    }

    @Test
    void routingOfAnotherShapeIsRejectedByForwardWithRouting() {
        ReferenceLayer layer = new ReferenceLayer(CONFIG, WEIGHTS);
        Routing other = layer.forward(input(4), ForwardOptions.inference()).routing();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> layer.forwardWithRouting(input(5).toDoubleArray(), 5, other, ForwardOptions.inference()));
        assertTrue(e.getMessage().startsWith("routing is for T=4"), e.getMessage());
    }
}

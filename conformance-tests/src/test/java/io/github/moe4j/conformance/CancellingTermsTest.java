package io.github.moe4j.conformance;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.AuxNormalization;
import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.LossWeights;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeGradients;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Presets;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import io.github.moe4j.reference.ReferenceForward;
import io.github.moe4j.reference.ReferenceLayer;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * k = E with f normalised over all choices makes f uniform, so the aux loss's logit gradient
 * p (f - Σ f p) is exactly zero; with every assignment dropped nothing else reaches the router and
 * the input, and the double oracle's gradient is rounding noise near 1e-13. A float32 backend's
 * noise is about u times the cancelled terms: the comparison must accept that, and still reject an
 * error of 1e-3 of those terms.
 */
class CancellingTermsTest {
    private static final MoeConfig CONFIG = Presets.mixtral().modelDim(6).hiddenDim(4).experts(3)
            .router(TokenChoiceRouterConfig.topK(3)).capacity(Capacity.fixed(0))
            .losses(LossWeights.of().aux(0.5, AuxNormalization.TOPK_NORMALIZED)).build();

    private static ReferenceForward forward(ReferenceLayer layer) {
        double[] x = new double[8 * 6];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (3 * Math.sin(0.7 * i + 1));
        }
        return layer.forward(x, 8, ForwardOptions.inference());
    }

    /** The oracle's input and router gradients with a relative perturbation of each element by {@code size} times the cancelled terms. */
    private static MoeGradients perturbed(MoeGradients want, CancellingTerms.Magnitudes m, double size) {
        return new MoeGradients(plus(want.input(), m.input(), size), plus(want.router(), m.router(), size), null, null,
                want.wIn(), want.wGate(), want.wOut(), want.bIn(), want.bOut());
    }

    private static Tensor plus(Tensor t, double[] magnitude, double size) {
        float[] v = t.toArray();
        for (int i = 0; i < v.length; i++) {
            v[i] += (float) ((i % 2 == 0 ? 1 : -1) * size * magnitude[i]);
        }
        return Tensor.of(v, t.shape());
    }

    @Test
    void float32NoiseOnCancelledTermsIsAcceptedAndARealErrorIsNot() {
        ReferenceLayer layer = new ReferenceLayer(CONFIG, MoeWeights.random(CONFIG, 4));
        ReferenceForward f = forward(layer);
        MoeGradients want = layer.backward(f, Tensor.zeros(8, 6), Set.of());
        CancellingTerms.Magnitudes m = CancellingTerms.of(f);
        assertTrue(Compare.maxAbs(m.input()) > 1e-3, "the cancelled terms are not small: " + Compare.maxAbs(m.input()));
        assertTrue(Compare.maxAbs(want.input().toDoubleArray()) < 1e-9 * Compare.maxAbs(m.input()), "the oracle's gradient is noise");
        Tolerance tol = Tolerances.FP32.gradients(new Tolerances.Sizes(6, 4, 3, 3, 8, 8, 1, 1));

        MoeGradients noisy = perturbed(want, m, 4 * Math.scalb(1.0, -24));
        Gradients.compare(want, noisy, tol, Set.of(), m, "float32-sized noise");
        assertThrows(AssertionError.class, () -> Gradients.compare(want, noisy, tol, Set.of(), "scale max|want| alone"),
                "without the cancelled terms' scale, float32 noise cannot pass: the defect this fixes");
        MoeGradients wrong = perturbed(want, m, 1e-3);
        assertThrows(AssertionError.class, () -> Gradients.compare(want, wrong, tol, Set.of(), m, "an error of 1e-3 of the terms"));
    }
}

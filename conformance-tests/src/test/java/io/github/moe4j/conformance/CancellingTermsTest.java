package io.github.moe4j.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
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

    /**
     * The output's scale is the largest \( \sum_j |g_{t,j}| (\sum_i |\mathit{hidden}_i W_{out,i,c}| + |b_{out,c}|) \),
     * recomputed here from the experts directly; it bounds |y|; noise of a few float32 roundings of
     * it passes, an error of 1e-3 of it does not.
     */
    @Test
    void outputScaleIsTheSumOfTheKeptTermsMagnitudes() {
        MoeConfig config = Presets.stMoe().modelDim(3).hiddenDim(2).experts(3).capacity(Capacity.dropless()).build();
        ReferenceLayer layer = new ReferenceLayer(config, MoeWeights.random(config, 9));
        ReferenceForward f = forwardOf(layer, 5, 3);
        double want = 0;
        for (int t = 0; t < 5; t++) {
            for (int c = 0; c < 3; c++) {
                double sum = 0;
                for (int j = 0; j < 2; j++) {
                    int e = f.plan().selected()[t * 2 + j];
                    double[] hidden = io.github.moe4j.reference.ExpertNetwork.forward(layer.weights(), config.activation(), e,
                            f.router().expertInput(), t * 3).hidden();
                    double terms = 0; // the preset has no expert biases
                    for (int i = 0; i < 2; i++) {
                        terms += Math.abs(hidden[i] * layer.weights().wOut()[(e * 2 + i) * 3 + c]);
                    }
                    sum += Math.abs(f.plan().gate()[t * 2 + j]) * terms;
                }
                want = Math.max(want, sum);
            }
        }
        double scale = CancellingTerms.outputScale(f);
        org.junit.jupiter.api.Assertions.assertEquals(want, scale, 1e-15 * want);
        assertTrue(scale >= Compare.maxAbs(f.y()));
        Tolerance tol = Tolerances.FP32.output(new Tolerances.Sizes(3, 2, 3, 2, 5, 5, 1, 1));
        double[] noisy = f.y().clone();
        double[] wrong = f.y().clone();
        for (int i = 0; i < noisy.length; i++) {
            noisy[i] += (i % 2 == 0 ? 4 : -4) * Math.scalb(1.0, -24) * scale;
            wrong[i] += 1e-3 * scale;
        }
        assertTrue(Compare.floatsReport("y", f.y(), noisy, new int[] {5, 3}, tol, scale).mismatches().isEmpty());
        assertTrue(!Compare.floatsReport("y", f.y(), wrong, new int[] {5, 3}, tol, scale).mismatches().isEmpty());
    }

    /**
     * One expert, d = h = 2, ReLU, W_in = I, W_out's columns (0.75, -1) and (0.375, -0.5), no biases
     * and a zero router: for x = (1, 0.75), hidden = (1, 0.75) and each output column cancels.
     */
    private static ReferenceLayer cancellingExpert() {
        MoeConfig config = Presets.switchTop1().modelDim(2).hiddenDim(2).experts(1).capacity(Capacity.dropless())
                .expertBias(false).build();
        MoeWeights w = new MoeWeights(Tensor.zeros(2, 1), null, null, Tensor.of(new float[] {1, 0, 0, 1}, 1, 2, 2), null,
                Tensor.of(new float[] {0.75f, 0.375f, -1f, -0.5f}, 1, 2, 2), null, null);
        return new ReferenceLayer(config, w);
    }

    /**
     * An expert's output can cancel inside the expert: with hidden = (1, 0.75) and W_out's columns
     * (0.75, -1) and (0.375, -0.5), y is exactly 0, yet a float32 backend's y carries the rounding of
     * terms of size 0.75 and 0.375. The scale counts those terms (1.5), not |y| or |g f| (0).
     */
    @Test
    void outputScaleCountsTheHiddenUnitsAnExpertSums() {
        ReferenceLayer layer = cancellingExpert();
        ReferenceForward f = layer.forward(new double[] {1, 0.75}, 1, ForwardOptions.inference());
        assertEquals(0.0, Compare.maxAbs(f.y()), "y cancels exactly");
        double scale = CancellingTerms.outputScale(f);
        assertEquals(1.5, scale, 1e-15);
        Tolerance tol = Tolerances.FP32.output(new Tolerances.Sizes(2, 2, 1, 1, 1, 1, 1, 1));
        double[] noisy = {4 * Math.scalb(1.0, -24) * 0.75, -4 * Math.scalb(1.0, -24) * 0.375};
        double[] wrong = {1e-3 * scale, 0};
        assertTrue(Compare.floatsReport("y", f.y(), noisy, new int[] {1, 2}, tol, scale).mismatches().isEmpty());
        assertTrue(!Compare.floatsReport("y", f.y(), wrong, new int[] {1, 2}, tol, scale).mismatches().isEmpty());
    }

    /**
     * The experts' backward can cancel inside an expert: with {@link #cancellingExpert}, hidden = (1, 0.75),
     * and dY = (1, -2), \( \partial L / \partial \mathit{hidden} = W_{out} dY \) is exactly 0, and so are the
     * input's and W_in's gradients, yet a float32 backend's carry the rounding of terms of size
     * |W_out| |dY| = (1.5, 2) (times |x| = (1, 0.75) in W_in's). With f = 0 no gate term reaches the input, so the expert terms alone
     * must accept that noise; an error of 1e-3 of them must still fail.
     */
    @Test
    void expertBackwardTermsScaleTheInputAndWeightGradients() {
        ReferenceLayer layer = cancellingExpert();
        ReferenceForward f = layer.forward(new double[] {1, 0.75}, 1, ForwardOptions.inference());
        double[] dY = {1, -2};
        MoeGradients want = layer.backward(f, Tensor.ofDoubles(dY, 1, 2), Set.of());
        assertEquals(0.0, Compare.maxAbs(want.input().toDoubleArray()), "the input's gradient cancels exactly");
        assertEquals(0.0, Compare.maxAbs(want.wIn().toDoubleArray()), "W_in's gradient cancels exactly");
        CancellingTerms.Magnitudes m = CancellingTerms.of(f, dY);
        org.junit.jupiter.api.Assertions.assertArrayEquals(new double[] {1.5, 2}, m.input(), 1e-15);
        org.junit.jupiter.api.Assertions.assertArrayEquals(new double[] {1.5, 2, 1.125, 1.5}, m.experts().wIn(), 1e-15);
        Tolerance tol = Tolerances.FP32.gradients(new Tolerances.Sizes(2, 2, 1, 1, 1, 1, 1, 1));
        MoeGradients noisy = expertPerturbed(want, m, 4 * Math.scalb(1.0, -24));
        Gradients.compare(want, noisy, tol, Set.of(), m, "float32-sized noise on the expert terms");
        assertThrows(AssertionError.class, () -> Gradients.compare(want, noisy, tol, Set.of(), "scale max|want| alone"));
        assertThrows(AssertionError.class, () -> Gradients.compare(want, expertPerturbed(want, m, 1e-3), tol, Set.of(), m,
                "1e-3 of the terms"));
    }

    /** The oracle's input and W_in gradients, each element moved by {@code size} times its expert terms. */
    private static MoeGradients expertPerturbed(MoeGradients want, CancellingTerms.Magnitudes m, double size) {
        return new MoeGradients(plus(want.input(), m.input(), size), want.router(), want.routerBias(), want.noiseRouter(),
                plus(want.wIn(), m.experts().wIn(), size), want.wGate(), want.wOut(), want.bIn(), want.bOut());
    }

    /**
     * With raw-probability gates and logits far apart, one probability is 1 - 1e-12 or so and the
     * router's gradient through p(δ - p) is tiny in exact arithmetic; a float32 backend computing
     * the standard softmax backward errs by about u times |dG| g (δ + g). That noise must pass, an
     * error of 1e-3 of those terms must not.
     */
    @Test
    void gateSoftmaxTermsScaleTheRouterGradientWhenOneProbabilityIsNearlyOne() {
        MoeConfig config = Presets.switchTop1().modelDim(4).hiddenDim(3).experts(3).capacity(Capacity.dropless())
                .router(TokenChoiceRouterConfig.topK(1).withGates(io.github.moe4j.api.GateNormalization.NONE))
                .losses(LossWeights.of()).build();
        ReferenceLayer layer = new ReferenceLayer(config, MoeWeights.random(config, 2));
        double[] x = new double[6 * 4];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (400 * Math.sin(0.9 * i + 0.4));
        }
        ReferenceForward f = layer.forward(x, 6, ForwardOptions.inference());
        double[] dY = new double[6 * 4];
        for (int i = 0; i < dY.length; i++) {
            dY[i] = (float) Math.cos(1.7 * i);
        }
        MoeGradients want = layer.backward(f, Tensor.ofDoubles(dY, 6, 4), Set.of());
        CancellingTerms.Magnitudes m = CancellingTerms.of(f, dY);
        assertTrue(Compare.maxAbs(m.router()) > 1e6 * Compare.maxAbs(want.router().toDoubleArray()),
                "the case must have a nearly-one probability: terms " + Compare.maxAbs(m.router()) + " vs gradient "
                        + Compare.maxAbs(want.router().toDoubleArray()));
        Tolerance tol = Tolerances.FP32.gradients(new Tolerances.Sizes(4, 3, 3, 1, 6, 6, 1, 1));
        MoeGradients noisy = perturbed(want, m, 4 * Math.scalb(1.0, -24));
        Gradients.compare(want, noisy, tol, Set.of(), m, "float32-sized noise on the softmax terms");
        assertThrows(AssertionError.class, () -> Gradients.compare(want, noisy, tol, Set.of(), "scale max|want| alone"));
        assertThrows(AssertionError.class, () -> Gradients.compare(want, perturbed(want, m, 1e-3), tol, Set.of(), m, "1e-3 of the terms"));
    }

    private static ReferenceForward forwardOf(ReferenceLayer layer, int tokens, int d) {
        double[] x = new double[tokens * d];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (2 * Math.cos(1.3 * i + 0.2));
        }
        return layer.forward(x, tokens, ForwardOptions.inference());
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

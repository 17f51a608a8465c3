package io.github.moe4j.opencl;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeGradients;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import io.github.moe4j.reference.ReferenceForward;
import io.github.moe4j.reference.ReferenceGradients;
import io.github.moe4j.reference.ReferenceLayer;
import java.util.Set;
import org.apache.commons.numbers.gamma.Erfc;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The GELU kinds keep float32 <em>relative</em> accuracy for large negative pre-activations, where
 * \( \Phi(a) \) and \( 1 + \tanh u \) are tiny and computing them as \( (1 + \operatorname{erf})/2 \)
 * or \( 1 + \tanh \) in float cancels (an erf with absolute error 1.5e-7 gives \( \Phi(-5) \approx 3\cdot10^{-7} \)
 * to a relative 50%).
 *
 * <p>The layer is one expert, d = h = 1, W_in = W_gate = W_out = 1, no biases, so the output of
 * token t is \( \phi(x_t) \) (gated: \( \phi(x_t)\,x_t \)), the input gradient for dY = 1 is
 * \( \phi'(x_t) \) (gated: \( \phi'(x_t) x_t + \phi(x_t) \)) and W_out's gradient is their sum over
 * tokens of one sign. Each element is compared with the reference's, allowed
 * \( C u (1 + \kappa) M + |\mathrm{ref} - \mathrm{exact}| \): M the magnitudes of the terms added
 * (the value itself, or \( |\Phi| + |a\varphi| \) for the derivative), \( \kappa = a^2 + 2|u(a)| \) the
 * relative condition of \( e^{-a^2/2} \) and \( e^{-2u} \), which float rounding of their argument's
 * inputs costs, C = {@value #C} (the erfc fit's 2u, its 9-step Horner chain over coefficients of
 * total magnitude 5.8, two exponentials and a few products), and the last term the reference's own
 * error in double (\( 1 + \operatorname{erf} \) and \( 1 - \tanh^2 \) lose everything below 1e-16 too),
 * measured against an exact evaluation here. Below float's smallest normal number relative accuracy
 * ends: an intermediate there may be subnormal or flushed to zero (OpenCL allows either), an absolute
 * error up to {@code Float.MIN_NORMAL} times the factors it is multiplied by afterwards, at most
 * \( (1 + |a|)^3 \).
 */
class ActivationAccuracyTest {
    static final double C = 64;
    private static final double U = Math.ulp(1.0f) / 2;
    private static final double SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

    @ParameterizedTest
    @EnumSource(value = Activation.class, names = {"GELU", "GELU_TANH", "GEGLU", "GEGLU_TANH"})
    void largeNegativePreActivationsKeepRelativeAccuracy(Activation kind) {
        check(kind, -30, -0.25);
        check(kind, 0, 10);
    }

    private static void check(Activation kind, double from, double to) {
        int tokens = (int) Math.round((to - from) / 0.25) + 1;
        float[] x = new float[tokens];
        for (int t = 0; t < tokens; t++) {
            x[t] = (float) (from + 0.25 * t);
        }
        MoeConfig config = MoeConfig.builder().modelDim(1).hiddenDim(1).experts(1).activation(kind)
                .router(TokenChoiceRouterConfig.topK(1)).build();
        Tensor one = Tensor.of(new float[] {1f}, 1, 1, 1);
        MoeWeights weights = MoeWeights.builder().router(Tensor.of(new float[] {0.5f}, 1, 1)).wIn(one)
                .wGate(kind.isGated() ? one : null).wOut(one).build();
        float[] ones = new float[tokens];
        java.util.Arrays.fill(ones, 1f);
        Tensor input = Tensor.of(x, tokens, 1);
        Tensor dy = Tensor.of(ones, tokens, 1);
        ForwardOptions options = ForwardOptions.inference();
        try (MoeLayer layer = OpenClTestSupport.backend().createLayer(config, weights)) {
            MoeForward f = layer.forward(input, options);
            MoeGradients g = layer.backward(f, dy, Set.of());
            ReferenceLayer ref = new ReferenceLayer(config, weights);
            ReferenceForward rf = ref.forwardWithRouting(input, f.routing(), options);
            ReferenceGradients rg = ref.backward(rf, dy.toDoubleArray(), Set.of());
            double sumExact = 0;
            double sumAllowed = 0;
            double sumAbs = 0;
            double worst = 0;
            for (int t = 0; t < tokens; t++) {
                double a = x[t];
                double[] e = exact(kind, a);
                double value = kind.isGated() ? e[0] * a : e[0];
                double valueTerms = Math.abs(value);
                double slope = kind.isGated() ? e[1] * a + e[0] : e[1];
                double slopeTerms = kind.isGated() ? e[2] * Math.abs(a) + Math.abs(e[0]) : e[2];
                double kappa = 1 + a * a + 2 * Math.abs(SQRT_2_OVER_PI * (a + 0.044715 * a * a * a));
                double wantY = rf.y()[t];
                double underflow = Float.MIN_NORMAL * Math.pow(1 + Math.abs(a), 3);
                double ownY = C * U * kappa * valueTerms + underflow;
                worst = Math.max(worst, compare(kind + " output", t, a, f.output().get(t), wantY, value, ownY));
                double wantDx = rg.input()[t];
                double ownDx = C * U * kappa * slopeTerms + underflow;
                worst = Math.max(worst, compare(kind + " input gradient", t, a, g.input().get(t), wantDx, slope, ownDx));
                sumExact += value;
                sumAllowed += C * U * kappa * valueTerms + underflow;
                sumAbs += valueTerms;
            }
            // W_out's gradient: the sum over the tokens of phi (all one sign), plus the sum's own roundings
            double wantW = rg.wOut()[0];
            double ownW = sumAllowed + tokens * U * sumAbs;
            worst = Math.max(worst, compare(kind + " wOut gradient", -1, Double.NaN, g.wOut().get(0), wantW, sumExact, ownW));
            System.out.printf("[moe-opencl tests] %s on [%s, %s]: worst distance from the exact value %.3g of the float32 allowance%n",
                    kind, from, to, worst);
        }
    }

    /**
     * Asserts |got − want| ≤ own + |want − exact| and returns |got − exact| / own, the fraction of
     * the float32 allowance the backend uses.
     */
    private static double compare(String what, int t, double a, double got, double want, double exact, double own) {
        double err = Math.abs(got - want);
        double allowed = own + Math.abs(want - exact);
        assertTrue(err <= allowed, () -> what + " at token " + t + " (a = " + a + "): OpenCL " + got + ", reference " + want
                + ", exact " + exact + ", |diff| " + err + " > allowed " + allowed + " (relative " + err / Math.abs(want) + ")");
        return Math.abs(got - exact) / own;
    }

    /** \( \phi(a) \), \( \phi'(a) \) and the magnitude of the terms \( \phi'(a) \) adds, in double without cancellation. */
    private static double[] exact(Activation kind, double a) {
        if (kind == Activation.GELU || kind == Activation.GEGLU) {
            double cdf = 0.5 * Erfc.value(-a / Math.sqrt(2));
            double pdf = Math.exp(-0.5 * a * a) / Math.sqrt(2 * Math.PI);
            return new double[] {a * cdf, cdf + a * pdf, cdf + Math.abs(a * pdf)};
        }
        double u = SQRT_2_OVER_PI * (a + 0.044715 * a * a * a);
        double s = 1 / (1 + Math.exp(-2 * u));
        double sc = 1 / (1 + Math.exp(2 * u));
        double du = SQRT_2_OVER_PI * (1 + 3 * 0.044715 * a * a);
        double second = 2 * a * s * sc * du;
        return new double[] {a * s, s + second, s + Math.abs(second)};
    }
}

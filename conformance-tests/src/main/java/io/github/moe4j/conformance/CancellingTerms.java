package io.github.moe4j.conformance;

import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import io.github.moe4j.reference.LoadBalancingLoss;
import io.github.moe4j.reference.ReferenceForward;
import io.github.moe4j.reference.ReferenceWeights;
import io.github.moe4j.reference.RouterOutput;
import io.github.moe4j.reference.RoutingPlan;

/**
 * The size of the terms a gradient's value cancels from, where the cancellation is structural, so
 * that rounding noise is judged against them and not against their (near-zero) difference.
 *
 * <p>The one such term is the load-balancing loss (SPEC §5):
 * \( \partial L_{aux} / \partial z_{t,j} = \alpha (E/T)\, p_{t,j} (f_j - \sum_i f_i p_{t,i}) \) is exactly 0
 * when f is uniform (k = E with {@code TOPK_*} normalisation, SPEC §12), yet each side of the
 * difference is about \( \alpha (E/T) p f \). In float32 the difference carries about u times that,
 * and where nothing else contributes (every assignment dropped) the gradient is that noise alone,
 * while the double oracle's is 1e-13 or so: a scale of max|want| would then demand the impossible.
 * This class gives, per gradient element, the sum of the absolute values of those terms, carried to
 * the input, router weight and router bias as the backward carries the terms themselves:
 * \( m_{z,t,j} = \alpha (E/T) p_{t,j} (|f_j| + \sum_i |f_i| p_{t,i}) \), \( m_x = (m_z |W_r|^\top) \odot |u| \),
 * \( m_{W_r} = |\tilde{x}|^\top m_z \), \( m_{b_r} = \sum_t m_z \).
 *
 * <p>The output cancels the same way wherever a token's kept experts nearly cancel,
 * \( y_t = \sum_j g_{t,j} f_{S_t[j]}(x_t) \approx 0 \): its scale is {@link #outputScale}, the largest
 * \( \sum_j |g_{t,j} f_{S_t[j]}(x_t)_c| \), not the largest |y|.
 */
final class CancellingTerms {
    private CancellingTerms() {}

    /**
     * The magnitudes of the aux-loss terms in each of the input, router and router-bias gradients.
     *
     * @param input      [T, d]
     * @param router     [d, E]
     * @param routerBias [E], or null without a router bias
     */
    record Magnitudes(double[] input, double[] router, double[] routerBias) {
        static final Magnitudes NONE = new Magnitudes(null, null, null);
    }

    /**
     * The scale of the output y [T, d]: the largest sum over a token's kept choices of
     * \( |g_{t,j}\, f_{S_t[j]}(x_t)_c| \), from the oracle's own gates and expert outputs. It is at
     * least max|y| and is what float32 rounding in y is proportional to.
     */
    static double outputScale(ReferenceForward on) {
        RoutingPlan plan = on.plan();
        int m = plan.choices();
        int d = on.config().modelDim();
        double scale = 0;
        for (int t = 0; t < plan.tokens(); t++) {
            double[] sum = new double[d];
            for (int j = 0; j < m; j++) {
                int row = on.dispatch().rowOf()[t * m + j];
                if (row < 0) {
                    continue;
                }
                double[] f = on.experts().activations()[plan.selected()[t * m + j]][row].output();
                for (int c = 0; c < d; c++) {
                    sum[c] += Math.abs(plan.gate()[t * m + j] * f[c]);
                }
            }
            for (double v : sum) {
                scale = Math.max(scale, v);
            }
        }
        return scale;
    }

    /** The magnitudes for the oracle's forward on the backend's routing; {@link Magnitudes#NONE} without an aux loss. */
    static Magnitudes of(ReferenceForward on) {
        MoeConfig config = on.config();
        double alpha = config.losses().aux();
        if (alpha == 0 || !(config.router() instanceof TokenChoiceRouterConfig)) {
            return Magnitudes.NONE;
        }
        RouterOutput r = on.router();
        RoutingPlan plan = on.plan();
        ReferenceWeights w = on.layer().weights();
        int tokens = plan.tokens();
        int e = config.experts();
        int d = config.modelDim();
        int k = config.topK();
        int groups = plan.groups();
        int groupSize = groups == 0 ? 0 : tokens / groups;
        double[] mz = new double[tokens * e];
        for (int g = 0; g < groups; g++) {
            int n = 0;
            for (int t = g * groupSize; t < (g + 1) * groupSize; t++) {
                n += r.realTokens()[t] ? 1 : 0;
            }
            int[] real = new int[n];
            for (int t = g * groupSize, i = 0; t < (g + 1) * groupSize; t++) {
                if (r.realTokens()[t]) {
                    real[i++] = t;
                }
            }
            if (n == 0) {
                continue;
            }
            double[] f = LoadBalancingLoss.dispatchFraction(plan.selected(), k, e, real, config.losses().auxNormalization());
            double c = alpha / groups * e / n;
            for (int t : real) {
                double fp = 0;
                for (int i = 0; i < e; i++) {
                    fp += Math.abs(f[i]) * r.probs()[t * e + i];
                }
                for (int j = 0; j < e; j++) {
                    mz[t * e + j] = c * r.probs()[t * e + j] * (Math.abs(f[j]) + fp);
                }
            }
        }
        double[] mx = new double[tokens * d];
        double[] mw = new double[d * e];
        double[] mb = w.routerBias() == null ? null : new double[e];
        for (int t = 0; t < tokens; t++) {
            for (int j = 0; j < e; j++) {
                double m = mz[t * e + j];
                for (int a = 0; a < d; a++) {
                    double u = r.jitter() == null ? 1 : Math.abs(r.jitter()[t * d + a]);
                    mx[t * d + a] += m * Math.abs(w.router()[a * e + j]) * u;
                    mw[a * e + j] += Math.abs(r.routerInput()[t * d + a]) * m;
                }
                if (mb != null) {
                    mb[j] += m;
                }
            }
        }
        return new Magnitudes(mx, mw, mb);
    }
}

package io.github.moe4j.conformance;

import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import io.github.moe4j.reference.ExpertNetwork;
import io.github.moe4j.reference.LoadBalancingLoss;
import io.github.moe4j.reference.ReferenceForward;
import io.github.moe4j.reference.ReferenceWeights;
import io.github.moe4j.reference.RouterOutput;
import io.github.moe4j.reference.RoutingPlan;

/**
 * The size of the terms a gradient's value cancels from, where the cancellation is structural, so
 * that rounding noise is judged against them and not against their (near-zero) difference.
 *
 * <p>Two such places are structural. The gates' softmax backward, \( g(\delta - g_j) \), nearly cancels
 * wherever one probability is close to 1 ({@link #gateTerms}). And the load-balancing loss (SPEC §5):
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
 * <p>The experts' backward cancels too: the input's gradient sums every kept expert's
 * \( W_{in} \partial L/\partial a + W_{gate} \partial L/\partial b \), which can nearly cancel across
 * experts and hidden units, and each weight gradient sums its rows' products. {@link #expertTerms}
 * carries the magnitudes of those terms through the expert backward of SPEC §10.
 *
 * <p>The output cancels the same way wherever a token's kept experts nearly cancel,
 * \( y_t = \sum_j g_{t,j} f_{S_t[j]}(x_t) \approx 0 \), or an expert's hidden units do,
 * \( f_c = \sum_i \mathit{hidden}_i W_{out,i,c} \approx 0 \): its scale is {@link #outputScale}, the
 * largest sum of the magnitudes of those terms, not the largest |y|.
 */
final class CancellingTerms {
    private CancellingTerms() {}

    /**
     * The magnitudes of the aux-loss terms in each of the input, router and router-bias gradients.
     *
     * @param input      [T, d]
     * @param router     [d, E]
     * @param routerBias [E], or null without a router bias
     * @param noiseRouter [d, E], or null without learned noise
     */
    record Magnitudes(double[] input, double[] router, double[] routerBias, double[] noiseRouter, ExpertTerms experts) {
        static final Magnitudes NONE = new Magnitudes(null, null, null, null, null);
    }

    /**
     * The magnitudes of the terms the experts' backward sums, in the weights' layouts.
     *
     * @param wIn   [E, d, h]
     * @param wGate [E, d, h], or null if not gated
     * @param wOut  [E, h, d]
     * @param bIn   [E, h], or null without expert biases
     * @param bOut  [E, d], or null without expert biases
     */
    record ExpertTerms(double[] wIn, double[] wGate, double[] wOut, double[] bIn, double[] bOut) {}

    /**
     * The scale of the output y [T, d]: the largest, over tokens t and columns c, of the terms y
     * sums, \( \sum_j |g_{t,j}| \, ( \sum_i |\mathit{hidden}_{t,j,i} W_{out,e,i,c}| + |b_{out,e,c}| ) \) with
     * e = S_t[j], from the oracle's own gates and hidden values. It is at least max|y|, and it is what
     * float32 rounding in y is proportional to: y cancels where a token's experts nearly cancel, and
     * an expert's output itself cancels where its hidden units' contributions do.
     */
    static double outputScale(ReferenceForward on) {
        ReferenceWeights w = on.layer().weights();
        int d = on.config().modelDim();
        int h = on.config().hiddenDim();
        double[] sum = new double[on.tokens() * d];
        forEachKeptRow(on, (t, j, e, cache) -> {
            double g = Math.abs(on.plan().gate()[t * on.plan().choices() + j]);
            for (int c = 0; c < d; c++) {
                // forward: f[c] = bOut[e, c] + Σ_i hidden[i] * wOut[e, i, c]
                double terms = w.bOut() == null ? 0 : Math.abs(w.bOut()[e * d + c]);
                for (int i = 0; i < h; i++) {
                    terms += Math.abs(cache.hidden()[i] * w.wOut()[(e * h + i) * d + c]);
                }
                sum[t * d + c] += g * terms;
            }
        });
        return Compare.maxAbs(sum);
    }

    /** What {@link #forEachKeptRow} calls for each kept choice j of token t, on expert e, with its forward values. */
    private interface KeptRow {
        void accept(int t, int j, int e, ExpertNetwork.Activations cache);
    }

    /** Calls {@code body} for every kept (token, choice) of the oracle's forward, in token and rank order. */
    private static void forEachKeptRow(ReferenceForward on, KeptRow body) {
        RoutingPlan plan = on.plan();
        int m = plan.choices();
        for (int t = 0; t < plan.tokens(); t++) {
            for (int j = 0; j < m; j++) {
                int row = on.dispatch().rowOf()[t * m + j];
                if (row >= 0) {
                    int e = plan.selected()[t * m + j];
                    body.accept(t, j, e, on.experts().activations()[e][row]);
                }
            }
        }
    }

    /** The aux-loss magnitudes alone (no upstream gradient). */
    static Magnitudes of(ReferenceForward on) {
        return of(on, null);
    }

    /**
     * The magnitudes of the aux-loss terms and of the gate-softmax terms for the oracle's forward on
     * the backend's routing.
     *
     * @param dOutput [T, d] the upstream gradient, or null for the losses alone
     */
    static Magnitudes of(ReferenceForward on, double[] dOutput) {
        MoeConfig config = on.config();
        double alpha = config.losses().aux();
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
        double[] mKeys = new double[tokens * e];
        double[] mSigma = new double[tokens * e];
        double[] mx = new double[tokens * d];
        ExpertTerms experts = null;
        if (dOutput != null) {
            gateTerms(on, dOutput, mz, mKeys);
            experts = expertTerms(on, dOutput, mx);
        }
        coefficientOfVariationTerms(on, mz, mKeys, mSigma);
        boolean aux = alpha != 0 && config.router() instanceof TokenChoiceRouterConfig;
        for (int g = 0; aux && g < groups; g++) {
            int[] real = r.realTokens(g, groupSize);
            int n = real.length;
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
                    mz[t * e + j] += c * r.probs()[t * e + j] * (Math.abs(f[j]) + fp);
                }
            }
        }
        double[] mw = new double[d * e];
        double[] mb = w.routerBias() == null ? null : new double[e];
        double[] mn = r.noiseStd() == null ? null : new double[d * e];
        for (int t = 0; t < tokens; t++) {
            for (int j = 0; j < e; j++) {
                // noisy top-k: H = z + eps * sigma, so a key's terms reach z as they are and sigma times |eps|
                double m = mz[t * e + j] + mKeys[t * e + j];
                if (mn != null) {
                    double sigmoid = 1 / (1 + Math.exp(-r.rawNoiseStd()[t * e + j]));
                    double ms = (mKeys[t * e + j] * Math.abs(r.noise()[t * e + j]) + mSigma[t * e + j]) * sigmoid;
                    for (int a = 0; a < d; a++) {
                        mn[a * e + j] += Math.abs(r.expertInput()[t * d + a]) * ms;
                        mx[t * d + a] += ms * Math.abs(w.noiseRouter()[a * e + j]);
                    }
                }
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
        return new Magnitudes(mx, mw, mb, mn, experts);
    }

    /**
     * The experts' backward with every term replaced by its magnitude: for each kept row of token t
     * with gate g on expert e, \( m_\delta = |g\, dY_t| \), \( m_{h,i} = \sum_c |W_{out,i,c}| m_{\delta,c} \),
     * \( m_{a,i} = m_{h,i} |\phi'(a_i)\, b_i| \), \( m_{b,i} = m_{h,i} |\phi(a_i)| \); the input's
     * \( m_{x,c} \mathrel{+}= \sum_i m_{a,i} |W_{in,c,i}| + m_{b,i} |W_{gate,c,i}| \) goes into {@code mx}, and
     * the weights' \( |x_c| m_{a,i} \), \( |x_c| m_{b,i} \), \( |\mathit{hidden}_i| m_{\delta,c} \) and the biases'
     * \( m_a \), \( m_\delta \) are summed over the rows.
     */
    private static ExpertTerms expertTerms(ReferenceForward on, double[] dOutput, double[] mx) {
        MoeConfig config = on.config();
        RoutingPlan plan = on.plan();
        ReferenceWeights w = on.layer().weights();
        io.github.moe4j.api.Activation kind = config.activation();
        int e = config.experts();
        int d = config.modelDim();
        int h = config.hiddenDim();
        int m = plan.choices();
        double[] x = on.router().expertInput();
        ExpertTerms terms = new ExpertTerms(new double[e * d * h], w.wGate() == null ? null : new double[e * d * h],
                new double[e * h * d], w.bIn() == null ? null : new double[e * h], w.bOut() == null ? null : new double[e * d]);
        double[] mDelta = new double[d];
        double[] mA = new double[h];
        double[] mB = new double[h];
        forEachKeptRow(on, (t, j, ex, cache) -> {
            double g = Math.abs(plan.gate()[t * m + j]);
            for (int c = 0; c < d; c++) {
                mDelta[c] = g * Math.abs(dOutput[t * d + c]);
            }
            for (int i = 0; i < h; i++) {
                double mHidden = 0;
                for (int c = 0; c < d; c++) {
                    mHidden += Math.abs(w.wOut()[(ex * h + i) * d + c]) * mDelta[c];
                    terms.wOut()[(ex * h + i) * d + c] += Math.abs(cache.hidden()[i]) * mDelta[c];
                }
                double a = cache.preActivation()[i];
                double b = cache.gateLinear() == null ? 1 : cache.gateLinear()[i];
                mA[i] = mHidden * Math.abs(ExpertNetwork.derivative(kind, a) * b);
                mB[i] = mHidden * Math.abs(ExpertNetwork.activate(kind, a));
                if (terms.bIn() != null) {
                    terms.bIn()[ex * h + i] += mA[i];
                }
            }
            for (int c = 0; c < d; c++) {
                if (terms.bOut() != null) {
                    terms.bOut()[ex * d + c] += mDelta[c];
                }
                double xc = Math.abs(x[t * d + c]);
                for (int i = 0; i < h; i++) {
                    int at = (ex * d + c) * h + i;
                    mx[t * d + c] += mA[i] * Math.abs(w.wIn()[at]);
                    terms.wIn()[at] += xc * mA[i];
                    if (terms.wGate() != null) {
                        mx[t * d + c] += mB[i] * Math.abs(w.wGate()[at]);
                        terms.wGate()[at] += xc * mB[i];
                    }
                }
            }
        });
        return terms;
    }

    /**
     * The terms of noisy top-k's cv² losses. \( \partial\, \mathrm{cv}^2 / \partial v_i \) is a difference of
     * terms of size \( 2(|v_i| + |\mu|)/(n(\mu^2+\epsilon)) + 2|\mu|\mathrm{var}/(n(\mu^2+\epsilon)^2) \) that
     * vanishes when v is uniform (SPEC §12: cv² of equal values is 0), where t2t's 1e-10 epsilons leave
     * the double oracle a value below float32's resolution of those terms. Importance is a sum of
     * gates, so its terms go through the gates' softmax over the selected keys; the smooth Load is a
     * sum of \( \Phi((\mathrm{clean} - \mathrm{thr})/\sigma) \), so its terms go, times \( \varphi/\sigma \), to the clean
     * logit, to the threshold's key and, times \( \varphi |u| / \sigma \), to \( \sigma \).
     */
    private static void coefficientOfVariationTerms(ReferenceForward on, double[] mz, double[] mKeys, double[] mSigma) {
        MoeConfig config = on.config();
        if (!(config.router() instanceof io.github.moe4j.api.NoisyTopKRouterConfig)) {
            return;
        }
        RouterOutput r = on.router();
        RoutingPlan plan = on.plan();
        int e = config.experts();
        int k = config.topK();
        int groups = plan.groups();
        int groupSize = groups == 0 ? 0 : plan.tokens() / groups;
        for (int g = 0; g < groups; g++) {
            double[] mImportance = cvTerms(on.importance(), g, e, config.losses().importance() / groups);
            double[] mLoad = r.probInTopK() == null ? null : cvTerms(on.loadVector(), g, e, config.losses().load() / groups);
            for (int t = g * groupSize; t < (g + 1) * groupSize; t++) {
                if (!r.realTokens()[t] || plan.selected()[t * k] < 0) {
                    continue;
                }
                for (int j = 0; j < k; j++) {
                    double dG = mImportance[plan.selected()[t * k + j]];
                    double gj = plan.gateBeforeCapacity()[t * k + j];
                    for (int i = 0; i < k; i++) {
                        mKeys[t * e + plan.selected()[t * k + i]] += dG * gj * ((i == j ? 1 : 0) + plan.gateBeforeCapacity()[t * k + i]);
                    }
                }
                if (mLoad == null) {
                    continue;
                }
                int[] order = io.github.moe4j.reference.TopK.ofRow(r.keys(), t * e, e, k + 1);
                for (int i = 0; i < e; i++) {
                    boolean in = r.keys()[t * e + i] > r.keys()[t * e + order[k]];
                    int threshold = in ? order[k] : order[k - 1];
                    double sigma = r.noiseStd()[t * e + i];
                    double u = (r.logits()[t * e + i] - r.keys()[t * e + threshold]) / sigma;
                    double density = Math.exp(-0.5 * u * u) / Math.sqrt(2 * Math.PI);
                    double m = mLoad[i] * density / sigma;
                    mz[t * e + i] += m;
                    mKeys[t * e + threshold] += m;
                    mSigma[t * e + i] += m * Math.abs(u);
                }
            }
        }
    }

    /** The magnitudes of the terms of \( w\, \partial\, \mathrm{cv}^2(v) / \partial v_i \) for group g's v = values[g E .. g E + E). */
    private static double[] cvTerms(double[] values, int g, int e, double weight) {
        double n = e + 1e-10;
        double sum = 0;
        for (int i = 0; i < e; i++) {
            sum += values[g * e + i];
        }
        double mean = sum / n;
        double var = 0;
        for (int i = 0; i < e; i++) {
            var += (values[g * e + i] - mean) * (values[g * e + i] - mean);
        }
        var /= n;
        double denominator = mean * mean + 1e-10;
        double[] m = new double[e];
        for (int i = 0; i < e; i++) {
            m[i] = Math.abs(weight) * (2 * (Math.abs(values[g * e + i]) + Math.abs(mean)) / (n * denominator)
                    + 2 * Math.abs(mean) * var / (n * denominator * denominator));
        }
        return m;
    }

    /**
     * The gate-softmax terms. A gate g is a softmax over some logits (p over all E for NONE and expert
     * choice, over the selected or kept logits for RENORMALIZE, over the selected noisy keys H for
     * noisy top-k), and its backward is \( \partial z_j \mathrel{+}= dG\, g (\delta - g_j) \): the
     * standard float32 form of it (PyTorch's) errs by about u times \( |dG|\, g (\delta + g_j) \),
     * however small the exact result, e.g. when one probability is nearly 1. With
     * \( dG_{t,r} = dY_t \cdot f_{S_t[r]}(x_t) \), the terms' magnitudes go to {@code mz} (logits) or
     * {@code mKeys} (noisy keys).
     */
    private static void gateTerms(ReferenceForward on, double[] dOutput, double[] mz, double[] mKeys) {
        MoeConfig config = on.config();
        RouterOutput r = on.router();
        RoutingPlan plan = on.plan();
        int e = config.experts();
        int d = config.modelDim();
        int m = plan.choices();
        boolean noisy = config.router() instanceof io.github.moe4j.api.NoisyTopKRouterConfig;
        boolean renormalized = noisy || config.router() instanceof TokenChoiceRouterConfig tc
                && tc.gates() == io.github.moe4j.api.GateNormalization.RENORMALIZE;
        boolean afterCapacity = config.router() instanceof TokenChoiceRouterConfig tc2
                && tc2.renormTiming() == io.github.moe4j.api.RenormTiming.AFTER_CAPACITY;
        double[] target = noisy ? mKeys : mz;
        forEachKeptRow(on, (t, j, ex, cache) -> {
            double[] f = cache.output();
            double dG = 0;
            for (int c = 0; c < d; c++) {
                dG += Math.abs(dOutput[t * d + c] * f[c]);
            }
            if (!renormalized) {
                // g = p_{t,ex} over all E logits (NONE, expert choice)
                double g = r.probs()[t * e + ex];
                for (int i = 0; i < e; i++) {
                    target[t * e + i] += dG * g * ((i == ex ? 1 : 0) + r.probs()[t * e + i]);
                }
            } else {
                // g over the token's selected (or, after capacity, kept) choices
                double[] gates = afterCapacity ? plan.gate() : plan.gateBeforeCapacity();
                double g = gates[t * m + j];
                for (int i = 0; i < m; i++) {
                    int other = plan.selected()[t * m + i];
                    if (other < 0 || (afterCapacity && plan.slot()[t * m + i] < 0)) {
                        continue;
                    }
                    target[t * e + other] += dG * g * ((i == j ? 1 : 0) + gates[t * m + i]);
                }
            }
        });
    }
}

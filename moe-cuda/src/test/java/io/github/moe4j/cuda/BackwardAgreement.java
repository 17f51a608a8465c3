package io.github.moe4j.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.Freeze;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.GateNormalization;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeGradients;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.RenormTiming;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import io.github.moe4j.reference.ExpertNetwork;
import io.github.moe4j.reference.ReferenceForward;
import io.github.moe4j.reference.ReferenceGradients;
import io.github.moe4j.reference.ReferenceLayer;
import io.github.moe4j.reference.ReferenceWeights;
import io.github.moe4j.reference.RoutingPlan;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * Judges one backward call of a backend against {@code ReferenceLayer#backward} on the backend's
 * own routing ({@code forwardWithRouting}, so a near-tie broken differently in float32 is not an
 * error), element by element, against a float32 error bound derived here, never a blanket tolerance.
 *
 * <p>The bound is a first-order running error analysis of the device's computation, carried out in
 * double next to the oracle's values (u = 2^-24; a sum of n terms in any order errs by at most
 * \( n u \sum |\text{terms}| \), a product or a function evaluation adds its relative rounding), then
 * doubled ({@link ForwardAgreement#SECOND_ORDER_FACTOR}) for second-order terms and for evaluating
 * it at the oracle's values instead of the device's. Its inputs are the forward's bounds
 * (logits \( \Delta z \), probabilities, gates, pre-activations \( \Delta a, \Delta b \),
 * \( \Delta\phi \), hidden, expert outputs \( \Delta f \): {@link ForwardAgreement}), and each
 * backward stage adds its own:
 * <ul>
 * <li>\( \delta = g\, dY \): \( \Delta\delta \le \Delta g |dY| + u |g\, dY| \);
 *     \( dg = \sum_c dY_c f_c \): \( \Delta dg \le \sum |dY_c| \Delta f_c + (d+1) u \sum |dY_c f_c| \);</li>
 * <li>\( dH = \delta W_{out}^\top \): \( \sum \Delta\delta |W| + d u \sum |\delta W| \);</li>
 * <li>\( \phi'(a) \): \( \Delta \phi' \le L_2 \Delta a + 32 u (1 + |a|(1 + a^2)) \), \( L_2 = 1 \ge \max|\phi''| \) of
 *     GELU (0.80), tanh-GELU (0.80) and SiLU (0.50), and the 32 ulps cover erf (16), exp, tanh and
 *     the cancellation in \( 1 - s \), \( 1 - \tanh^2 \) times |a| (and |a|^3 for tanh-GELU); ReLU's is
 *     exact unless \( |a| \le \Delta a \), where it may jump by 1;</li>
 * <li>\( dA = dH \phi'(a) b \), \( dB = dH \phi(a) \): the product rule on the above plus 2u;</li>
 * <li>row input gradient \( dA W_{in}^\top + dB W_{gate}^\top \): \( 2h \) terms; token input gradient
 *     sums k rows; weight gradients sum the expert's n rows ( \( n u \) ) and bias gradients too;</li>
 * <li>router: \( dP \) (aux scale rounded in float: 5u); the softmax backward as the kernel evaluates it,
 *     \( p_i \sum_{j \ne i} p_j (dP_i - dP_j) \) (E terms), and the subset-softmax term
 *     \( g_j \sum_{m \ne j} g_m (dg_j - dg_m) \) (k terms), each with twice the forward's relative
 *     probability or gate error; the z-loss term \( c\, \mathrm{lse}\, p \) (5u);</li>
 * <li>\( dZ W_r^\top \) (E terms), \( \tilde{x}^\top dZ \) and the bias sum (T terms), jitter products (u each).</li>
 * </ul>
 */
final class BackwardAgreement {
    static final double U = ForwardAgreement.U;
    static final double L2 = 1.0;
    static final double DERIVATIVE_ULPS = 32;

    /** Worst error and worst error/bound ratio per gradient component. */
    record Report(Map<String, double[]> worst) {
        @Override
        public String toString() {
            StringBuilder b = new StringBuilder();
            worst.forEach((name, w) -> b.append(String.format("%s: max |err| %.3g (err/bound %.3g); ", name, w[0], w[1])));
            return b.toString();
        }

        double worstRatio() {
            double r = 0;
            for (double[] w : worst.values()) {
                r = Math.max(r, w[1]);
            }
            return r;
        }
    }

    private BackwardAgreement() {}

    /** Runs forward and backward on the layer and the oracle and asserts agreement. */
    static Report check(MoeLayer layer, MoeWeights weights, Tensor input, ForwardOptions options, Tensor dY, Set<Freeze> frozen) {
        return check(layer, weights, input, options, dY, dY, frozen);
    }

    /**
     * As {@link #check(MoeLayer, MoeWeights, Tensor, ForwardOptions, Tensor, Set)}, but the device gets
     * {@code dYDevice} while the oracle gets {@code dY} (to show the check catches a wrong backward).
     */
    static Report check(MoeLayer layer, MoeWeights weights, Tensor input, ForwardOptions options, Tensor dY, Tensor dYDevice,
                        Set<Freeze> frozen) {
        return check(layer, layer.config(), weights, input, options, dY, dYDevice, frozen);
    }

    /**
     * The general check: the oracle runs {@code oracleConfig} (normally the layer's own) on {@code dY},
     * the device runs the layer on {@code dYDevice}.
     */
    static Report check(MoeLayer layer, MoeConfig oracleConfig, MoeWeights weights, Tensor input, ForwardOptions options, Tensor dY,
                        Tensor dYDevice, Set<Freeze> frozen) {
        MoeConfig config = oracleConfig;
        ReferenceLayer ref = new ReferenceLayer(config, weights);
        try (MoeForward got = layer.forward(input, options)) {
            MoeGradients grads = layer.backward(got, dYDevice, frozen);
            ReferenceForward f = ref.forwardWithRouting(input, got.routing(), options);
            ReferenceGradients want = ref.backward(f, dY.toDoubleArray(), frozen);
            Bounds b = new Bounds(config, ref.weights(), f, dY.toDoubleArray());
            Map<String, double[]> worst = new LinkedHashMap<>();
            compare("input", grads.input(), want.input(), b.input, worst);
            compare("router", grads.router(), want.router(), b.router, worst);
            compare("routerBias", grads.routerBias(), want.routerBias(), b.routerBias, worst);
            compare("noiseRouter", grads.noiseRouter(), want.noiseRouter(), b.noiseRouter, worst);
            compare("wIn", grads.wIn(), want.wIn(), b.wIn, worst);
            compare("wGate", grads.wGate(), want.wGate(), b.wGate, worst);
            compare("wOut", grads.wOut(), want.wOut(), b.wOut, worst);
            compare("bIn", grads.bIn(), want.bIn(), b.bIn, worst);
            compare("bOut", grads.bOut(), want.bOut(), b.bOut, worst);
            return new Report(worst);
        }
    }

    private static void compare(String name, Tensor got, double[] want, double[] bound, Map<String, double[]> worst) {
        if (want == null) {
            assertNull(got, name + " should be null (absent or frozen)");
            return;
        }
        assertNotNull(got, name + " is null but the oracle has it");
        float[] g = got.toArray();
        assertEquals(want.length, g.length, name + " size");
        double maxErr = 0;
        double ratio = 0;
        for (int i = 0; i < g.length; i++) {
            double err = Math.abs(g[i] - want[i]);
            double bd = ForwardAgreement.SECOND_ORDER_FACTOR * bound[i];
            if (!(err <= bd)) {
                fail(name + "[" + i + "]: got " + g[i] + ", oracle " + want[i] + ", |err| " + err + " > bound " + bd);
            }
            maxErr = Math.max(maxErr, err);
            ratio = Math.max(ratio, bd == 0 ? 0 : err / bd);
        }
        worst.put(name, new double[] {maxErr, ratio});
    }

    /** First-order error bounds of every gradient element (before the second-order factor). */
    private static final class Bounds {
        final double[] input;
        final double[] router;
        final double[] routerBias;
        final double[] noiseRouter;
        final double[] wIn;
        final double[] wGate;
        final double[] wOut;
        final double[] bIn;
        final double[] bOut;

        Bounds(MoeConfig config, ReferenceWeights w, ReferenceForward f, double[] dY) {
            int tokens = f.tokens();
            int d = config.modelDim();
            int h = config.hiddenDim();
            int e = config.experts();
            int k = config.choicesPerToken();
            Activation act = config.activation();
            boolean gated = act.isGated();
            TokenChoiceRouterConfig tc = config.router() instanceof TokenChoiceRouterConfig c ? c : null;
            boolean isNoisy = config.router() instanceof io.github.moe4j.api.NoisyTopKRouterConfig;
            ForwardAgreement.NoisyBounds nb = isNoisy ? new ForwardAgreement.NoisyBounds(f, w, tokens, d, e, k) : null;
            RoutingPlan plan = f.plan();
            double[] z = f.router().logits();
            double[] p = f.router().probs();
            double[] xr = f.router().routerInput();
            double[] xe = f.router().expertInput();
            double[] u = f.router().jitter();
            boolean jitter = u != null;
            boolean expertsJittered = jitter && xe == xr;
            ReferenceLayer.Dispatch dispatch = f.dispatch();
            int groups = plan.groups();
            int gs = tokens / groups;

            // forward: per token logit error, lse, relative probability / gate error
            double[] dz = new double[tokens];
            double[] lse = new double[tokens];
            double[] relP = new double[tokens];
            double[] relG = new double[tokens];
            double[] dLse = new double[tokens];
            for (int t = 0; t < tokens; t++) {
                double m = Double.NEGATIVE_INFINITY;
                double zt = 0;
                for (int i = 0; i < e; i++) {
                    double s = w.routerBias() == null ? 0 : Math.abs(w.routerBias()[i]);
                    for (int j = 0; j < d; j++) {
                        s += Math.abs(xr[t * d + j] * w.router()[j * e + i]);
                    }
                    dz[t] = Math.max(dz[t], (d + 2) * U * s);
                    m = Math.max(m, z[t * e + i]);
                    zt = Math.max(zt, Math.abs(z[t * e + i]));
                }
                double sum = 0;
                for (int i = 0; i < e; i++) {
                    sum += Math.exp(z[t * e + i] - m);
                }
                lse[t] = m + Math.log(sum);
                relP[t] = 2 * dz[t] + U * (4 * (zt + Math.abs(lse[t])) + e + k + 10);
                relG[t] = isNoisy ? nb.gateRelative(t, dz[t], zt, lse[t]) : relP[t];
                dLse[t] = dz[t] + U * (zt + Math.abs(lse[t]) + e + 4);
            }

            // combine and experts, row by row
            double[] dGate = new double[tokens * k];
            double[] dGateErr = new double[tokens * k];
            double[] dXrowsAtToken = new double[tokens * d];
            double[] dXrowsAtTokenErr = new double[tokens * d];
            double[] dXrowsAtTokenAbs = new double[tokens * d];
            wIn = new double[e * d * h];
            wGate = gated ? new double[e * d * h] : null;
            wOut = new double[e * h * d];
            bIn = new double[e * h];
            bOut = new double[e * d];
            for (int ex = 0; ex < e; ex++) {
                int n = dispatch.tokenOf()[ex].length;
                double[] absWIn = new double[d * h];
                double[] absWGate = new double[d * h];
                double[] absWOut = new double[h * d];
                double[] absBIn = new double[h];
                double[] absBOut = new double[d];
                for (int row = 0; row < n; row++) {
                    int t = dispatch.tokenOf()[ex][row];
                    int j = dispatch.choiceOf()[ex][row];
                    int a = t * k + j;
                    ExpertNetwork.Activations cache = f.experts().activations()[ex][row];
                    double g = plan.gate()[a];
                    double dg = relG[t] * Math.abs(g);
                    // forward bounds of this row
                    double[] da = new double[h];
                    double[] db = new double[h];
                    double[] dphi = new double[h];
                    double[] dv = new double[h];
                    for (int i = 0; i < h; i++) {
                        double sa = w.bIn() == null ? 0 : Math.abs(w.bIn()[ex * h + i]);
                        double sb = 0;
                        for (int c = 0; c < d; c++) {
                            sa += Math.abs(xe[t * d + c] * w.wIn()[(ex * d + c) * h + i]);
                            if (gated) {
                                sb += Math.abs(xe[t * d + c] * w.wGate()[(ex * d + c) * h + i]);
                            }
                        }
                        double av = cache.preActivation()[i];
                        double phi = ExpertNetwork.activate(act, av);
                        da[i] = (d + 2) * U * sa;
                        db[i] = (d + 2) * U * sb;
                        dphi[i] = ForwardAgreement.LIPSCHITZ_PHI * da[i] + ForwardAgreement.ACTIVATION_ULPS * U * (Math.abs(av) + Math.abs(phi));
                        dv[i] = gated ? dphi[i] * Math.abs(cache.gateLinear()[i]) + Math.abs(phi) * db[i] + U * Math.abs(cache.hidden()[i])
                                : dphi[i];
                    }
                    double[] df = new double[d];
                    for (int c = 0; c < d; c++) {
                        double s1 = w.bOut() == null ? 0 : Math.abs(w.bOut()[ex * d + c]);
                        double s2 = 0;
                        for (int i = 0; i < h; i++) {
                            s1 += Math.abs(cache.hidden()[i] * w.wOut()[(ex * h + i) * d + c]);
                            s2 += dv[i] * Math.abs(w.wOut()[(ex * h + i) * d + c]);
                        }
                        df[c] = (h + 2) * U * s1 + s2;
                    }
                    // combine backward
                    double sumDg = 0;
                    double errDg = 0;
                    double absDg = 0;
                    double[] delta = new double[d];
                    double[] dDelta = new double[d];
                    for (int c = 0; c < d; c++) {
                        double y = dY[t * d + c];
                        double fc = cache.output()[c];
                        sumDg += y * fc;
                        absDg += Math.abs(y * fc);
                        errDg += Math.abs(y) * df[c];
                        delta[c] = g * y;
                        dDelta[c] = dg * Math.abs(y) + U * Math.abs(g * y);
                    }
                    dGate[a] = sumDg;
                    dGateErr[a] = errDg + (d + 1) * U * absDg;
                    // experts backward
                    double[] dH = new double[h];
                    double[] dHErr = new double[h];
                    for (int i = 0; i < h; i++) {
                        double s = 0;
                        double abs = 0;
                        double err = 0;
                        for (int c = 0; c < d; c++) {
                            double wv = w.wOut()[(ex * h + i) * d + c];
                            s += delta[c] * wv;
                            abs += Math.abs(delta[c] * wv);
                            err += dDelta[c] * Math.abs(wv);
                        }
                        dH[i] = s;
                        dHErr[i] = err + d * U * abs;
                    }
                    double[] dA = new double[h];
                    double[] dAErr = new double[h];
                    double[] dB = new double[h];
                    double[] dBErr = new double[h];
                    for (int i = 0; i < h; i++) {
                        double av = cache.preActivation()[i];
                        double phi = ExpertNetwork.activate(act, av);
                        double dPhi = ExpertNetwork.derivative(act, av);
                        double errDPhi;
                        if (act == Activation.RELU) {
                            errDPhi = Math.abs(av) <= da[i] ? 1 : 0;
                        } else {
                            errDPhi = L2 * da[i] + DERIVATIVE_ULPS * U * (1 + Math.abs(av) * (1 + av * av));
                        }
                        double bv = gated ? cache.gateLinear()[i] : 1;
                        double dbv = gated ? db[i] : 0;
                        dA[i] = dH[i] * dPhi * bv;
                        dAErr[i] = dHErr[i] * Math.abs(dPhi * bv) + Math.abs(dH[i]) * errDPhi * Math.abs(bv)
                                + Math.abs(dH[i] * dPhi) * dbv + 2 * U * Math.abs(dA[i]);
                        if (gated) {
                            dB[i] = dH[i] * phi;
                            dBErr[i] = dHErr[i] * Math.abs(phi) + Math.abs(dH[i]) * dphi[i] + U * Math.abs(dB[i]);
                        }
                    }
                    for (int c = 0; c < d; c++) {
                        double s = 0;
                        double abs = 0;
                        double err = 0;
                        for (int i = 0; i < h; i++) {
                            double wi = w.wIn()[(ex * d + c) * h + i];
                            s += dA[i] * wi;
                            abs += Math.abs(dA[i] * wi);
                            err += dAErr[i] * Math.abs(wi);
                            if (gated) {
                                double wg = w.wGate()[(ex * d + c) * h + i];
                                s += dB[i] * wg;
                                abs += Math.abs(dB[i] * wg);
                                err += dBErr[i] * Math.abs(wg);
                            }
                        }
                        dXrowsAtToken[t * d + c] += s;
                        dXrowsAtTokenAbs[t * d + c] += Math.abs(s);
                        dXrowsAtTokenErr[t * d + c] += err + 2 * h * U * abs;
                    }
                    // weight gradients: error terms of this row, and magnitudes for the n-term sums
                    for (int c = 0; c < d; c++) {
                        double x = xe[t * d + c];
                        double dx = expertsJittered ? U * Math.abs(x) : 0;
                        for (int i = 0; i < h; i++) {
                            wIn[(ex * d + c) * h + i] += Math.abs(x) * dAErr[i] + dx * Math.abs(dA[i]);
                            absWIn[c * h + i] += Math.abs(x * dA[i]);
                            if (gated) {
                                wGate[(ex * d + c) * h + i] += Math.abs(x) * dBErr[i] + dx * Math.abs(dB[i]);
                                absWGate[c * h + i] += Math.abs(x * dB[i]);
                            }
                        }
                    }
                    for (int i = 0; i < h; i++) {
                        double v = cache.hidden()[i];
                        for (int c = 0; c < d; c++) {
                            wOut[(ex * h + i) * d + c] += dv[i] * Math.abs(delta[c]) + Math.abs(v) * dDelta[c];
                            absWOut[i * d + c] += Math.abs(v * delta[c]);
                        }
                        bIn[ex * h + i] += dAErr[i];
                        absBIn[i] += Math.abs(dA[i]);
                    }
                    for (int c = 0; c < d; c++) {
                        bOut[ex * d + c] += dDelta[c];
                        absBOut[c] += Math.abs(delta[c]);
                    }
                }
                for (int i = 0; i < d * h; i++) {
                    wIn[ex * d * h + i] += n * U * absWIn[i];
                    if (gated) {
                        wGate[ex * d * h + i] += n * U * absWGate[i];
                    }
                    wOut[ex * h * d + i] += n * U * absWOut[i];
                }
                for (int i = 0; i < h; i++) {
                    bIn[ex * h + i] += n * U * absBIn[i];
                }
                for (int c = 0; c < d; c++) {
                    bOut[ex * d + c] += n * U * absBOut[c];
                }
            }

            // routing and losses backward: dZ and its error per (t, i)
            double cAux = config.losses().aux();
            double cZ = config.losses().z();
            double[] dZ = new double[tokens * e];
            double[] dZErr = new double[tokens * e];
            boolean none = tc == null || tc.gates() == GateNormalization.NONE;
            boolean after = !none && tc.renormTiming() == RenormTiming.AFTER_CAPACITY;
            double[] dRawV = isNoisy ? new double[tokens * e] : null;
            double[] dRawErr = isNoisy ? new double[tokens * e] : null;
            for (int g = 0; g < groups; g++) {
                int nReal = 0;
                for (int t = g * gs; t < (g + 1) * gs; t++) {
                    nReal += f.router().realTokens()[t] ? 1 : 0;
                }
                double[] frac = new double[e];
                int ranks = config.losses().auxNormalization() == io.github.moe4j.api.AuxNormalization.TOP1 ? 1 : k;
                for (int t = g * gs; t < (g + 1) * gs; t++) {
                    if (!f.router().realTokens()[t]) {
                        continue;
                    }
                    for (int r = 0; r < ranks; r++) {
                        int ex = plan.selected()[t * k + r];
                        if (ex >= 0) {
                            frac[ex] += 1;
                        }
                    }
                }
                double fScale = nReal == 0 ? 0
                        : config.losses().auxNormalization() == io.github.moe4j.api.AuxNormalization.TOPK_NORMALIZED ? 1.0 / (k * nReal)
                        : 1.0 / nReal;
                double auxScale = nReal == 0 || tc == null ? 0 : cAux / groups * e / nReal;
                double zScale = nReal == 0 ? 0 : cZ / groups * 2 / nReal;
                NoisyGroup ng = isNoisy ? new NoisyGroup(config, f, nb, g, relG, dz) : null;
                for (int t = g * gs; t < (g + 1) * gs; t++) {
                    boolean real = f.router().realTokens()[t];
                    boolean routed = false;
                    for (int j = 0; j < k; j++) {
                        routed |= plan.selected()[t * k + j] >= 0;
                    }
                    if (isNoisy) {
                        ng.token(t, real, zScale, lse[t], dLse[t], relP[t], dGate, dGateErr, dZ, dZErr, dRawV, dRawErr);
                        continue;
                    }
                    double[] dP = new double[e];
                    double[] dPErr = new double[e];
                    for (int i = 0; i < e; i++) {
                        if (real) {
                            dP[i] = auxScale * frac[i] * fScale;
                            dPErr[i] = 5 * U * Math.abs(dP[i]);
                        }
                    }
                    if (none && routed) {
                        for (int j = 0; j < k; j++) {
                            if (plan.slot()[t * k + j] >= 0) {
                                int ex = plan.selected()[t * k + j];
                                dP[ex] += dGate[t * k + j];
                                dPErr[ex] += dGateErr[t * k + j] + (k + 1) * U * (Math.abs(dP[ex]) + Math.abs(dGate[t * k + j]));
                            }
                        }
                    }
                    double[] part = new double[e];
                    double[] partErr = new double[e];
                    double[] partAbs = new double[e];
                    if (routed && !none) {
                        // kernel: part[S_j] += g_j * sum_(m != j in the subset) g_m (dB_j - dB_m)
                        for (int j = 0; j < k; j++) {
                            boolean kept = plan.slot()[t * k + j] >= 0;
                            if (after && !kept) {
                                continue;
                            }
                            double gj = after ? plan.gate()[t * k + j] : plan.gateBeforeCapacity()[t * k + j];
                            double dj = kept ? dGate[t * k + j] : 0;
                            double ej = kept ? dGateErr[t * k + j] : 0;
                            double sub = 0;
                            double subAbs = 0;
                            double subErr = 0;
                            for (int m = 0; m < k; m++) {
                                boolean keptM = plan.slot()[t * k + m] >= 0;
                                if (m == j || (after && !keptM)) {
                                    continue;
                                }
                                double gm = after ? plan.gate()[t * k + m] : plan.gateBeforeCapacity()[t * k + m];
                                double dm = keptM ? dGate[t * k + m] : 0;
                                sub += gm * (dj - dm);
                                subAbs += Math.abs(gm * (dj - dm));
                                subErr += Math.abs(gm) * (ej + (keptM ? dGateErr[t * k + m] : 0));
                            }
                            int ex = plan.selected()[t * k + j];
                            double v = gj * sub;
                            part[ex] += v;
                            partAbs[ex] += Math.abs(v);
                            partErr[ex] += 2 * relP[t] * Math.abs(gj) * subAbs + Math.abs(gj) * subErr + (k + 2) * U * Math.abs(gj) * subAbs;
                        }
                    }
                    for (int i = 0; i < e; i++) {
                        double pi = p[t * e + i];
                        double zPart = real ? zScale * lse[t] * pi : 0;
                        double zErr = real ? Math.abs(zScale) * (dLse[t] * pi + Math.abs(lse[t]) * relP[t] * pi) + 5 * U * Math.abs(zPart) : 0;
                        // kernel: soft = p_i * sum_(j != i) p_j (dP_i - dP_j)
                        double soft = 0;
                        double softAbs = 0;
                        double softErr = 0;
                        for (int q = 0; q < e; q++) {
                            if (q == i) {
                                continue;
                            }
                            double pq = p[t * e + q];
                            soft += pq * (dP[i] - dP[q]);
                            softAbs += pq * Math.abs(dP[i] - dP[q]);
                            softErr += pq * (dPErr[i] + dPErr[q]);
                        }
                        soft *= pi;
                        softErr = pi * softErr + (2 * relP[t] + (e + 2) * U) * pi * softAbs;
                        dZ[t * e + i] = zPart + part[i] + soft;
                        dZErr[t * e + i] = zErr + partErr[i] + softErr + 3 * U * (Math.abs(zPart) + partAbs[i] + Math.abs(soft));
                    }
                }
            }

            // router backward
            input = new double[tokens * d];
            for (int t = 0; t < tokens; t++) {
                for (int j = 0; j < d; j++) {
                    double s = 0;
                    double abs = 0;
                    double err = 0;
                    for (int i = 0; i < e; i++) {
                        double wr = w.router()[j * e + i];
                        s += dZ[t * e + i] * wr;
                        abs += Math.abs(dZ[t * e + i] * wr);
                        err += dZErr[t * e + i] * Math.abs(wr);
                    }
                    if (isNoisy && f.router().noiseStd() != null) {
                        for (int i = 0; i < e; i++) {
                            double wn = w.noiseRouter()[j * e + i];
                            s += dRawV[t * e + i] * wn;
                            abs += Math.abs(dRawV[t * e + i] * wn);
                            err += dRawErr[t * e + i] * Math.abs(wn);
                        }
                        err += 2 * U * abs;
                    }
                    double dRiErr = err + e * U * abs;
                    double uj = jitter ? Math.abs(u[t * d + j]) : 1;
                    double ue = expertsJittered ? uj : 1;
                    double xeErr = dXrowsAtTokenErr[t * d + j] + k * U * dXrowsAtTokenAbs[t * d + j];
                    input[t * d + j] = uj * dRiErr + ue * xeErr
                            + 2 * U * (uj * Math.abs(s) + ue * dXrowsAtTokenAbs[t * d + j]);
                }
            }
            noiseRouter = new double[d * e];
            if (isNoisy && f.router().noiseStd() != null) {
                for (int j = 0; j < d; j++) {
                    for (int i = 0; i < e; i++) {
                        double abs = 0;
                        double err = 0;
                        for (int t = 0; t < tokens; t++) {
                            double x = xr[t * d + j];
                            abs += Math.abs(x * dRawV[t * e + i]);
                            err += Math.abs(x) * dRawErr[t * e + i];
                        }
                        noiseRouter[j * e + i] = err + tokens * U * abs;
                    }
                }
            }
            router = new double[d * e];
            routerBias = new double[e];
            for (int j = 0; j < d; j++) {
                for (int i = 0; i < e; i++) {
                    double abs = 0;
                    double err = 0;
                    for (int t = 0; t < tokens; t++) {
                        double x = xr[t * d + j];
                        abs += Math.abs(x * dZ[t * e + i]);
                        err += Math.abs(x) * dZErr[t * e + i] + (jitter ? U * Math.abs(x * dZ[t * e + i]) : 0);
                    }
                    router[j * e + i] = err + tokens * U * abs;
                }
            }
            for (int i = 0; i < e; i++) {
                double abs = 0;
                double err = 0;
                for (int t = 0; t < tokens; t++) {
                    abs += Math.abs(dZ[t * e + i]);
                    err += dZErr[t * e + i];
                }
                routerBias[i] = err + tokens * U * abs;
            }
        }
    }

    /**
     * Noisy top-k's routing backward bounds of one group (first order, before the second-order factor),
     * following {@code noisy_router_backward}:
     * <ul>
     * <li>\( dI = c_{imp}/G \cdot \partial \mathrm{cv}^2 / \partial I \) and likewise dLoad, computed on the host from the
     *     device's float vectors: \( \Delta dI_e \le \sum_f |\partial dI_e / \partial I_f| \Delta I_f + u |dI_e| \), the Hessian of
     *     \( \mathrm{cv}^2 \) by central differences in double, \( \Delta I \), \( \Delta \mathrm{Load} \) from
     *     {@link ForwardAgreement.NoisyBounds};</li>
     * <li>the softmax over the selected H, \( g_j \sum_{m \ne j} g_m (dB_j - dB_m) \): as the token-choice
     *     subset term, with the noisy gates' relative error;</li>
     * <li>smooth load, \( a = \phi(u)/\sigma \) and \( b = -\phi(u) u / \sigma \) (u = v/σ) through their Lipschitz
     *     constants \( \max|u\phi(u)| = \phi(1) < 0.25 \), \( \max \phi(u)|u^2 - 1| = \phi(0) < 0.4 \),
     *     \( \max|\phi(u) u (2 - u^2)| < 0.35 \) (all over \( \sigma^2 \)), with \( \Delta v \le \Delta z + \Delta H_{thr} + 2u|v| \),
     *     and \( (5 w^2 + 16) u \) relative for the evaluation (w = v / (√2 σ): the rounding of \( w^2 \) inside exp);</li>
     * <li>sums of at most k + E terms into dKeys; \( dz = z_{part} + dV + dKeys \) (3u); \( d\sigma = b\,dP + \varepsilon\, dKeys \),
     *     \( d\mathit{raw} = \operatorname{sigmoid}(r)\, d\sigma \) with \( \Delta \operatorname{sigmoid} \le \Delta r / 4 + 4u \).</li>
     * </ul>
     */
    private static final class NoisyGroup {
        private final MoeConfig config;
        private final ReferenceForward f;
        private final ForwardAgreement.NoisyBounds nb;
        private final double[] relG;
        private final double[] dz;
        private final double[] dImp;
        private final double[] dImpErr;
        private final double[] dLoad;
        private final double[] dLoadErr;

        NoisyGroup(MoeConfig config, ReferenceForward f, ForwardAgreement.NoisyBounds nb, int g, double[] relG, double[] dz) {
            this.config = config;
            this.f = f;
            this.nb = nb;
            this.relG = relG;
            this.dz = dz;
            int e = config.experts();
            int groups = f.plan().groups();
            double[] imp = java.util.Arrays.copyOfRange(f.importance(), g * e, (g + 1) * e);
            dImp = io.github.moe4j.reference.CoefficientOfVariation.squaredBackward(imp, config.losses().importance() / groups);
            dImpErr = hessianTimes(imp, config.losses().importance() / groups, nb.importanceError(g, relG, f.plan().selected()), dImp);
            if (f.router().probInTopK() != null) {
                double[] load = java.util.Arrays.copyOfRange(f.loadVector(), g * e, (g + 1) * e);
                dLoad = io.github.moe4j.reference.CoefficientOfVariation.squaredBackward(load, config.losses().load() / groups);
                dLoadErr = hessianTimes(load, config.losses().load() / groups, nb.loadError(g, dz), dLoad);
            } else {
                dLoad = new double[e];
                dLoadErr = new double[e];
            }
        }

        /** \( \sum_f |\partial dV_e / \partial v_f| \Delta v_f + u |dV_e| \), the Hessian by central differences. */
        private static double[] hessianTimes(double[] v, double scale, double[] dv, double[] grad) {
            int n = v.length;
            double max = 0;
            for (double x : v) {
                max = Math.max(max, Math.abs(x));
            }
            double step = 1e-5 * Math.max(max, 1e-30);
            double[] out = new double[n];
            for (int fIdx = 0; fIdx < n; fIdx++) {
                double[] plus = v.clone();
                double[] minus = v.clone();
                plus[fIdx] += step;
                minus[fIdx] -= step;
                double[] gp = io.github.moe4j.reference.CoefficientOfVariation.squaredBackward(plus, scale);
                double[] gm = io.github.moe4j.reference.CoefficientOfVariation.squaredBackward(minus, scale);
                for (int i = 0; i < n; i++) {
                    out[i] += Math.abs((gp[i] - gm[i]) / (2 * step)) * dv[fIdx];
                }
            }
            for (int i = 0; i < n; i++) {
                out[i] += U * Math.abs(grad[i]);
            }
            return out;
        }

        void token(int t, boolean real, double zScale, double lse, double dLse, double relP, double[] dGate, double[] dGateErr,
                   double[] dZ, double[] dZErr, double[] dRawV, double[] dRawErr) {
            int e = config.experts();
            int k = config.topK();
            RoutingPlan plan = f.plan();
            double[] p = f.router().probs();
            double[] z = f.router().logits();
            double[] keys = f.router().keys();
            double[] sigma = f.router().noiseStd();
            double[] key = new double[e];
            double[] keyErr = new double[e];
            double[] keyAbs = new double[e];
            double[] lg = new double[e];
            double[] lgErr = new double[e];
            double[] sg = new double[e];
            double[] sgErr = new double[e];
            if (plan.selected()[t * k] >= 0) {
                double[] dB = new double[k];
                double[] eB = new double[k];
                for (int j = 0; j < k; j++) {
                    boolean kept = plan.slot()[t * k + j] >= 0;
                    int ex = plan.selected()[t * k + j];
                    dB[j] = (kept ? dGate[t * k + j] : 0) + (real ? dImp[ex] : 0);
                    eB[j] = (kept ? dGateErr[t * k + j] : 0) + (real ? dImpErr[ex] : 0) + 2 * U * Math.abs(dB[j]);
                }
                for (int j = 0; j < k; j++) {
                    double gj = plan.gateBeforeCapacity()[t * k + j];
                    double sub = 0;
                    double subAbs = 0;
                    double subErr = 0;
                    for (int m = 0; m < k; m++) {
                        if (m == j) {
                            continue;
                        }
                        double gm = plan.gateBeforeCapacity()[t * k + m];
                        sub += gm * (dB[j] - dB[m]);
                        subAbs += Math.abs(gm * (dB[j] - dB[m]));
                        subErr += Math.abs(gm) * (eB[j] + eB[m]);
                    }
                    int ex = plan.selected()[t * k + j];
                    key[ex] += gj * sub;
                    keyAbs[ex] += Math.abs(gj * sub);
                    keyErr[ex] += 2 * relG[t] * Math.abs(gj) * subAbs + Math.abs(gj) * subErr + (k + 2) * U * Math.abs(gj) * subAbs;
                }
            }
            if (f.router().probInTopK() != null && real) {
                int[] order = io.github.moe4j.reference.TopK.ofRow(keys, t * e, e, k + 1);
                double thrIn = keys[t * e + order[k]];
                for (int i = 0; i < e; i++) {
                    int thr = keys[t * e + i] > thrIn ? order[k] : order[k - 1];
                    double v = z[t * e + i] - keys[t * e + thr];
                    double s = sigma[t * e + i];
                    double a = io.github.moe4j.reference.NoisyTopKRouter.normalCdfDv(v, s);
                    double b = io.github.moe4j.reference.NoisyTopKRouter.normalCdfDsigma(v, s);
                    double dv = dz[t] + (dz[t] + nb.dKeyMax[t]) + 2 * U * Math.abs(v);
                    double ds = nb.dSigma[t * e + i];
                    double w2 = v * v / (2 * s * s);
                    double aErr = (0.25 * dv + 0.4 * ds) / (s * s) + (5 * w2 + 16) * U * a;
                    double bErr = (0.4 * dv + 0.35 * ds) / (s * s) + (5 * w2 + 16) * U * Math.abs(b);
                    double dP = dLoad[i];
                    double dV = dP * a;
                    double dVErr = dLoadErr[i] * a + Math.abs(dP) * aErr + U * Math.abs(dV);
                    lg[i] += dV;
                    lgErr[i] += dVErr;
                    key[thr] -= dV;
                    keyErr[thr] += dVErr;
                    keyAbs[thr] += Math.abs(dV);
                    double c = dP * b;
                    sg[i] += c;
                    sgErr[i] += dLoadErr[i] * Math.abs(b) + Math.abs(dP) * bErr + U * Math.abs(c);
                }
            }
            for (int i = 0; i < e; i++) {
                keyErr[i] += (k + e) * U * keyAbs[i];
                double pi = p[t * e + i];
                double zPart = real ? zScale * lse * pi : 0;
                double zErr = real ? Math.abs(zScale) * (dLse * pi + Math.abs(lse) * relP * pi) + 5 * U * Math.abs(zPart) : 0;
                dZ[t * e + i] = zPart + lg[i] + key[i];
                dZErr[t * e + i] = zErr + lgErr[i] + keyErr[i] + 3 * U * (Math.abs(zPart) + Math.abs(lg[i]) + Math.abs(key[i]));
                if (sigma != null) {
                    double eps = f.router().noise()[t * e + i];
                    double dSigma = sg[i] + eps * key[i];
                    double dSigmaErr = sgErr[i] + Math.abs(eps) * keyErr[i] + 2 * U * (Math.abs(sg[i]) + Math.abs(eps * key[i]));
                    double r = f.router().rawNoiseStd()[t * e + i];
                    double sig = 1 / (1 + Math.exp(-r));
                    double sigErr = 0.25 * nb.dRaw[t * e + i] + 4 * U * sig;
                    dRawV[t * e + i] = sig * dSigma;
                    dRawErr[t * e + i] = sig * dSigmaErr + sigErr * Math.abs(dSigma) + U * Math.abs(sig * dSigma);
                }
            }
        }
    }

    /** Asserts that the two gradient sets are bit-identical (deterministic backward). */
    static void assertSame(MoeGradients a, MoeGradients b) {
        Tensor[] x = {a.input(), a.router(), a.routerBias(), a.noiseRouter(), a.wIn(), a.wGate(), a.wOut(), a.bIn(), a.bOut()};
        Tensor[] y = {b.input(), b.router(), b.routerBias(), b.noiseRouter(), b.wIn(), b.wGate(), b.wOut(), b.bIn(), b.bOut()};
        for (int i = 0; i < x.length; i++) {
            if (x[i] == null || y[i] == null) {
                assertEquals(x[i] == null, y[i] == null, "component " + i + " null in one run only");
                continue;
            }
            assertArrayEquals(x[i].toArray(), y[i].toArray(), "component " + i + " differs between two runs");
        }
    }
}

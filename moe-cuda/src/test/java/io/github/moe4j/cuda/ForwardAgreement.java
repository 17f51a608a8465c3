package io.github.moe4j.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Routing;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.reference.ExpertNetwork;
import io.github.moe4j.reference.ReferenceForward;
import io.github.moe4j.reference.ReferenceLayer;
import io.github.moe4j.reference.ReferenceWeights;
import io.github.moe4j.reference.RoutingPlan;

/**
 * Judges one forward call of a backend against {@code ReferenceLayer}, as SPEC §11 says:
 *
 * <ol>
 * <li>Routing: for every token, each chosen expert's oracle logit is at least the oracle's k-th
 *     largest minus \( \delta = 10^{-4}(1 + \max_i |z_{t,i}|) \), the k choices are distinct, and
 *     consecutive ranks are in descending oracle order within δ. Where the selection equals the
 *     oracle's for every token, slots, load and kept counts must equal the oracle's exactly.</li>
 * <li>Values: gates, output and losses are compared with {@code forwardWithRouting} on the
 *     backend's own routing (double precision), element by element, against a float32 error bound
 *     derived below, never a blanket tolerance.</li>
 * </ol>
 *
 * <p>The bound (u = 2^-24, \( \gamma_n = n u \); first order, then doubled to cover second-order
 * terms and the use of the oracle's double values in place of the device's float ones):
 * <ul>
 * <li>a dot product of length n in any order: \( |\Delta| \le \gamma_{n} \sum |a_i b_i| \) (+2 for a bias add
 *     and the jitter product);</li>
 * <li>logits: \( \Delta z_{t,i} \le \gamma_{d+2} (\sum_j |\tilde{x}_{t,j} W_{r,j,i}| + |b_{r,i}|) \);</li>
 * <li>gates: relative error \( \le 2 \max_i \Delta z_{t,i} + u (4(\max_i |z_{t,i}| + |\mathrm{lse}_t|) + E + k + 10) \)
 *     (softmax sensitivity 2 to its inputs; exp at most 3 ulp, log 3 ulp, sums of E terms);</li>
 * <li>activation: \( |\Delta \phi| \le L_\phi \Delta a + 24 u (|a| + |\phi(a)|) \), \( L_\phi = 1.13 \) the largest
 *     |φ'| of ReLU/GELU/SiLU; 24 ulp covers OpenCL's erf (16 ulp), tanh (5), exp (3) plus the
 *     formula's roundings (CUDA's erff/tanhf/expf are 2 ulp or better);</li>
 * <li>expert output: \( \Delta f_c \le \gamma_{h+2} \sum_i |v_i W_{out,i,c}| + \sum_i \Delta v_i |W_{out,i,c}| \);</li>
 * <li>combine: \( \Delta y_c \le \sum_j (|\Delta g_j| |f_c| + |g_j| \Delta f_c) + \gamma_{2k} \sum_j |g_j f_c| \);</li>
 * <li>aux loss: relative \( \le \) the largest probability error + \( \gamma_{T+E+4} \); z-loss:
 *     \( |\Delta \mathrm{lse}^2| \le 2 |\mathrm{lse}| \Delta \mathrm{lse} \) per token plus \( \gamma_{T+2} \).</li>
 * </ul>
 */
final class ForwardAgreement {
    static final double U = Math.ulp(1.0f) / 2;
    static final double ACTIVATION_ULPS = 24;
    static final double LIPSCHITZ_PHI = 1.13;
    static final double SECOND_ORDER_FACTOR = 2;

    /** What one comparison measured. */
    record Report(int tokens, int tokensWithOtherSelection, double worstOutputRatio, double maxOutputError,
                  double worstGateRatio, double maxGateError, double auxError, double zError) {
        @Override
        public String toString() {
            return String.format("T=%d, selections differing within delta=%d, output: max |err| %.3g (worst err/bound %.3g), "
                            + "gates: max |err| %.3g (worst err/bound %.3g), |aux err| %.3g, |z err| %.3g",
                    tokens, tokensWithOtherSelection, maxOutputError, worstOutputRatio, maxGateError, worstGateRatio, auxError, zError);
        }
    }

    private ForwardAgreement() {}

    /** Runs the layer and the oracle on the same call and asserts agreement; returns the measurements. */
    static Report check(MoeLayer layer, MoeWeights weights, Tensor input, ForwardOptions options) {
        MoeConfig config = layer.config();
        ReferenceLayer ref = new ReferenceLayer(config, weights);
        int tokens = input.dim(0);
        int e = config.experts();
        int k = config.choicesPerToken();
        int d = config.modelDim();
        boolean expertChoice = config.router() instanceof io.github.moe4j.api.ExpertChoiceRouterConfig;
        try (MoeForward got = layer.forward(input, options)) {
            Routing r = got.routing();
            ReferenceForward oracle = ref.forward(input.toDoubleArray(), tokens, options);
            double[] keys = oracle.router().keys();
            int[] sel = r.experts2d();
            int[] want = oracle.plan().selected();
            int differing = 0;
            if (expertChoice) {
                differing = expertChoiceSelection(oracle, r);
            }
            for (int t = 0; t < tokens && !expertChoice; t++) {
                if (want[t * k] < 0) {
                    for (int j = 0; j < k; j++) {
                        assertEquals(-1, sel[t * k + j], "token " + t + " is not routed by the oracle but choice " + j + " has an expert");
                    }
                    continue;
                }
                boolean same = true;
                double max = 0;
                for (int i = 0; i < e; i++) {
                    max = Math.max(max, Math.abs(keys[t * e + i]));
                }
                double delta = 1e-4 * (1 + max);
                double kth = keys[t * e + want[t * k + k - 1]];
                for (int j = 0; j < k; j++) {
                    int ex = sel[t * k + j];
                    assertTrue(ex >= 0 && ex < e, "token " + t + " choice " + j + " has expert " + ex);
                    for (int q = 0; q < j; q++) {
                        assertTrue(sel[t * k + q] != ex, "token " + t + " chose expert " + ex + " twice");
                    }
                    double key = keys[t * e + ex];
                    assertTrue(key >= kth - delta, "token " + t + " choice " + j + ": expert " + ex + " has oracle logit " + key
                            + " below the k-th largest " + kth + " minus delta " + delta);
                    if (j > 0) {
                        double prev = keys[t * e + sel[t * k + j - 1]];
                        assertTrue(prev >= key - delta, "token " + t + ": ranks " + (j - 1) + " and " + j + " are out of order beyond delta");
                    }
                    same &= ex == want[t * k + j];
                }
                differing += same ? 0 : 1;
            }
            if (differing == 0) {
                RoutingPlan plan = oracle.plan();
                assertArrayEquals(plan.slot(), r.slots(), "capacity slots differ from the oracle's with the same selection");
                assertArrayEquals(plan.load(), r.load(), "load differs from the oracle's");
                assertArrayEquals(plan.kept(), r.kept(), "kept counts differ from the oracle's");
                assertEquals(plan.capacity(), r.capacity(), "capacity");
            }

            ReferenceForward adopted = ref.forwardWithRouting(input, r, options);
            double[] z = adopted.router().logits();
            double[] p = adopted.router().probs();
            double[] xr = adopted.router().routerInput();
            ReferenceWeights w = ref.weights();
            // logit error bound per (t, i) and its maximum per token
            double[] dzMax = new double[tokens];
            double[] relGate = new double[tokens];
            NoisyBounds noisy = config.router() instanceof io.github.moe4j.api.NoisyTopKRouterConfig
                    ? new NoisyBounds(adopted, w, tokens, d, e, k) : null;
            double[] lse = new double[tokens];
            double maxAbsZ = 0;
            for (int t = 0; t < tokens; t++) {
                double m = Double.NEGATIVE_INFINITY;
                for (int i = 0; i < e; i++) {
                    double s = w.routerBias() == null ? 0 : Math.abs(w.routerBias()[i]);
                    for (int j = 0; j < d; j++) {
                        s += Math.abs(xr[t * d + j] * w.router()[j * e + i]);
                    }
                    dzMax[t] = Math.max(dzMax[t], (d + 2) * U * s);
                    m = Math.max(m, z[t * e + i]);
                    maxAbsZ = Math.max(maxAbsZ, Math.abs(z[t * e + i]));
                }
                double sum = 0;
                for (int i = 0; i < e; i++) {
                    sum += Math.exp(z[t * e + i] - m);
                }
                lse[t] = m + Math.log(sum);
            }
            // gates
            float[] gGot = r.gates();
            double[] gWant = adopted.plan().gate();
            double worstGate = 0;
            double maxGateErr = 0;
            double[] gateBound = new double[tokens * k];
            for (int t = 0; t < tokens; t++) {
                double zt = 0;
                for (int i = 0; i < e; i++) {
                    zt = Math.max(zt, Math.abs(z[t * e + i]));
                }
                double rel = 2 * dzMax[t] + U * (4 * (zt + Math.abs(lse[t])) + e + k + 10);
                if (noisy != null) {
                    rel = noisy.gateRelative(t, dzMax[t], zt, lse[t]);
                }
                relGate[t] = rel;
                for (int j = 0; j < k; j++) {
                    int a = t * k + j;
                    gateBound[a] = SECOND_ORDER_FACTOR * rel * Math.abs(gWant[a]);
                    double err = Math.abs(gGot[a] - gWant[a]);
                    maxGateErr = Math.max(maxGateErr, err);
                    if (err > gateBound[a]) {
                        fail("gate of token " + t + " choice " + j + ": got " + gGot[a] + ", oracle " + gWant[a] + ", |err| " + err
                                + " > bound " + gateBound[a]);
                    }
                    worstGate = Math.max(worstGate, gateBound[a] == 0 ? 0 : err / gateBound[a]);
                }
            }
            // outputs
            float[] yGot = got.output().toArray();
            double[] yWant = adopted.y();
            double[] bound = new double[tokens * d];
            ReferenceLayer.Dispatch dispatch = adopted.dispatch();
            int h = config.hiddenDim();
            Activation act = config.activation();
            double[] xe = adopted.router().expertInput();
            for (int ex = 0; ex < e; ex++) {
                for (int row = 0; row < dispatch.tokenOf()[ex].length; row++) {
                    int t = dispatch.tokenOf()[ex][row];
                    int j = dispatch.choiceOf()[ex][row];
                    ExpertNetwork.Activations cache = adopted.experts().activations()[ex][row];
                    double[] dv = new double[h];
                    for (int i = 0; i < h; i++) {
                        double sa = w.bIn() == null ? 0 : Math.abs(w.bIn()[ex * h + i]);
                        double sb = 0;
                        for (int c = 0; c < d; c++) {
                            sa += Math.abs(xe[t * d + c] * w.wIn()[(ex * d + c) * h + i]);
                            if (act.isGated()) {
                                sb += Math.abs(xe[t * d + c] * w.wGate()[(ex * d + c) * h + i]);
                            }
                        }
                        double a = cache.preActivation()[i];
                        double phi = ExpertNetwork.activate(act, a);
                        double da = (d + 2) * U * sa;
                        double dphi = LIPSCHITZ_PHI * da + ACTIVATION_ULPS * U * (Math.abs(a) + Math.abs(phi));
                        if (act.isGated()) {
                            double b = cache.gateLinear()[i];
                            dv[i] = dphi * Math.abs(b) + Math.abs(phi) * (d + 2) * U * sb + U * Math.abs(cache.hidden()[i]);
                        } else {
                            dv[i] = dphi;
                        }
                    }
                    double g = adopted.plan().gate()[t * k + j];
                    for (int c = 0; c < d; c++) {
                        double s1 = w.bOut() == null ? 0 : Math.abs(w.bOut()[ex * d + c]);
                        double s2 = 0;
                        for (int i = 0; i < h; i++) {
                            s1 += Math.abs(cache.hidden()[i] * w.wOut()[(ex * h + i) * d + c]);
                            s2 += dv[i] * Math.abs(w.wOut()[(ex * h + i) * d + c]);
                        }
                        double df = (h + 2) * U * s1 + s2;
                        double f = cache.output()[c];
                        bound[t * d + c] += gateBound[t * k + j] / SECOND_ORDER_FACTOR * Math.abs(f) + Math.abs(g) * df
                                + 2 * k * U * Math.abs(g * f);
                    }
                }
            }
            double worst = 0;
            double maxErr = 0;
            for (int i = 0; i < yGot.length; i++) {
                double b = SECOND_ORDER_FACTOR * bound[i];
                double err = Math.abs(yGot[i] - yWant[i]);
                maxErr = Math.max(maxErr, err);
                if (err > b) {
                    fail("output[" + i / d + ", " + i % d + "]: got " + yGot[i] + ", oracle " + yWant[i] + ", |err| " + err + " > bound " + b);
                }
                worst = Math.max(worst, b == 0 ? 0 : err / b);
            }
            // losses
            double maxRelP = 0;
            double zBound = 0;
            for (int t = 0; t < tokens; t++) {
                double zt = 0;
                for (int i = 0; i < e; i++) {
                    zt = Math.max(zt, Math.abs(z[t * e + i]));
                }
                maxRelP = Math.max(maxRelP, 2 * dzMax[t] + U * (4 * (zt + Math.abs(lse[t])) + e + 10));
                double dLse = dzMax[t] + U * (zt + Math.abs(lse[t]) + e + 4);
                zBound = Math.max(zBound, 2 * Math.abs(lse[t]) * dLse + (tokens + 2) * U * lse[t] * lse[t]);
            }
            double auxWant = adopted.losses().aux();
            double auxErr = Math.abs(got.losses().aux() - auxWant);
            double auxBound = SECOND_ORDER_FACTOR * (maxRelP + (tokens + e + 4) * U) * Math.abs(auxWant);
            assertTrue(auxErr <= auxBound, "aux loss: got " + got.losses().aux() + ", oracle " + auxWant + ", |err| " + auxErr + " > bound " + auxBound);
            double zWant = adopted.losses().z();
            double zErr = Math.abs(got.losses().z() - zWant);
            assertTrue(zErr <= SECOND_ORDER_FACTOR * zBound, "z loss: got " + got.losses().z() + ", oracle " + zWant + ", |err| " + zErr
                    + " > bound " + SECOND_ORDER_FACTOR * zBound);
            double impBound = 0;
            double loadBound = 0;
            if (noisy != null) {
                impBound = SECOND_ORDER_FACTOR * noisy.importanceLossBound(relGate, r.experts2d());
                loadBound = SECOND_ORDER_FACTOR * noisy.loadLossBound(dzMax);
                double impErr = Math.abs(got.losses().importance() - adopted.losses().importance());
                assertTrue(impErr <= impBound, "importance loss: got " + got.losses().importance() + ", oracle "
                        + adopted.losses().importance() + ", |err| " + impErr + " > bound " + impBound);
                double loadErr = Math.abs(got.losses().load() - adopted.losses().load());
                assertTrue(loadErr <= loadBound, "load loss: got " + got.losses().load() + ", oracle " + adopted.losses().load()
                        + ", |err| " + loadErr + " > bound " + loadBound);
                System.out.printf("[noisy losses] importance |err| %.3g (bound %.3g), load |err| %.3g (bound %.3g)%n", impErr, impBound,
                        loadErr, loadBound);
            }
            double totalWant = adopted.losses().total();
            assertTrue(Math.abs(got.losses().total() - totalWant) <= config.losses().aux() * auxBound
                    + config.losses().z() * SECOND_ORDER_FACTOR * zBound + config.losses().importance() * impBound
                    + config.losses().load() * loadBound + 1e-300, "total loss: got " + got.losses().total() + ", oracle " + totalWant);
            return new Report(tokens, differing, worst, maxErr, worstGate, maxGateErr, auxErr, zErr);
        }
    }


    /**
     * Expert choice's selection (SPEC §7): per group and expert, the tokens taken must be the oracle's
     * C best by s up to near-ties: a token taken by one side only has an oracle score within
     * \( \delta = 10^{-4} \) of the oracle's C-th best (s is a probability in [0, 1]); each expert takes
     * exactly the oracle's number of tokens.
     *
     * @return the tokens whose row of the selection differs from the oracle's
     */
    static int expertChoiceSelection(ReferenceForward oracle, Routing r) {
        RoutingPlan plan = oracle.plan();
        int tokens = plan.tokens();
        int e = plan.experts();
        int gs = tokens / plan.groups();
        double[] s = oracle.router().probs();
        int[] sel = r.experts2d();
        int[] want = plan.selected();
        boolean[] differs = new boolean[tokens];
        for (int g = 0; g < plan.groups(); g++) {
            for (int ex = 0; ex < e; ex++) {
                int taken = 0;
                int takenWant = 0;
                double lowest = Double.POSITIVE_INFINITY;
                for (int t = g * gs; t < (g + 1) * gs; t++) {
                    assertTrue(sel[t * e + ex] == -1 || sel[t * e + ex] == ex, "token " + t + " column " + ex + " holds expert " + sel[t * e + ex]);
                    taken += sel[t * e + ex] == ex ? 1 : 0;
                    if (want[t * e + ex] == ex) {
                        takenWant++;
                        lowest = Math.min(lowest, s[t * e + ex]);
                    }
                }
                assertEquals(takenWant, taken, "group " + g + " expert " + ex + " took another number of tokens than the oracle");
                for (int t = g * gs; t < (g + 1) * gs; t++) {
                    if (sel[t * e + ex] != want[t * e + ex]) {
                        differs[t] = true;
                        assertTrue(Math.abs(s[t * e + ex] - lowest) <= 1e-4, "group " + g + " expert " + ex + ": token " + t
                                + " taken by one side only, with oracle score " + s[t * e + ex] + " beyond delta of the C-th best " + lowest);
                    }
                }
            }
        }
        int n = 0;
        for (boolean b : differs) {
            n += b ? 1 : 0;
        }
        return n;
    }

    /**
     * The extra bounds of noisy top-k (first order, before {@link #SECOND_ORDER_FACTOR}):
     * <ul>
     * <li>raw noise std \( \Delta r \le \gamma_d \sum_j |x_j W_{noise,j,i}| \); \( \sigma = \operatorname{softplus}(r) + \epsilon_0 \):
     *     \( \Delta\sigma \le \operatorname{sigmoid}(r) \Delta r + 8u\sigma \) (exp, log1p, max, add);</li>
     * <li>keys \( H = z + \varepsilon\sigma \): \( \Delta H \le \Delta z + |\varepsilon| \Delta\sigma + 2u(|H| + |\varepsilon\sigma|) \);</li>
     * <li>gates (softmax over the selected H): relative \( \le 2 \max \Delta H + u(4(\max|H| + |\mathrm{lse}| + \max|H| + 1) + E + k + 10) \);</li>
     * <li>importance \( I_e = \sum g \): \( \sum \Delta g + \gamma_T \sum g \); smooth load \( P = \Phi(v/\sigma) \),
     *     \( v = z_i - H_{thr} \): \( \Delta P \le \partial_v P (\Delta z_i + \Delta H_{thr} + 3u|v|) + |\partial_\sigma P| \Delta\sigma
     *     + 16u \) (OpenCL erf 16 ulp, halved and shifted by 1); load \( \sum \Delta P + \gamma_T \sum P \);</li>
     * <li>\( \mathrm{cv}^2 \) (host, double): \( \sum_e |\partial \mathrm{cv}^2 / \partial v_e| \Delta v_e \), averaged over groups.</li>
     * </ul>
     */
    static final class NoisyBounds {
        private final ReferenceForward f;
        private final int tokens;
        private final int e;
        private final int k;
        final double[] dSigma;
        final double[] dRaw;
        final double[] dKeyMax;
        final double[] keyMax;

        NoisyBounds(ReferenceForward f, ReferenceWeights w, int tokens, int d, int e, int k) {
            this.f = f;
            this.tokens = tokens;
            this.e = e;
            this.k = k;
            double[] sigma = f.router().noiseStd();
            double[] raw = f.router().rawNoiseStd();
            double[] eps = f.router().noise();
            double[] x = f.router().routerInput();
            double[] keys = f.router().keys();
            dSigma = new double[tokens * e];
            dRaw = new double[tokens * e];
            dKeyMax = new double[tokens];
            keyMax = new double[tokens];
            for (int t = 0; t < tokens; t++) {
                for (int i = 0; i < e; i++) {
                    keyMax[t] = Math.max(keyMax[t], Math.abs(keys[t * e + i]));
                    if (sigma == null) {
                        continue;
                    }
                    double s = 0;
                    for (int j = 0; j < d; j++) {
                        s += Math.abs(x[t * d + j] * w.noiseRouter()[j * e + i]);
                    }
                    double sig = 1 / (1 + Math.exp(-raw[t * e + i]));
                    dRaw[t * e + i] = d * U * s;
                    dSigma[t * e + i] = sig * d * U * s + 8 * U * sigma[t * e + i];
                    double dk = Math.abs(eps[t * e + i]) * dSigma[t * e + i]
                            + 2 * U * (Math.abs(keys[t * e + i]) + Math.abs(eps[t * e + i] * sigma[t * e + i]));
                    dKeyMax[t] = Math.max(dKeyMax[t], dk);
                }
            }
        }

        double gateRelative(int t, double dz, double zt, double lse) {
            double dKey = dz + dKeyMax[t];
            double ht = Math.max(zt, keyMax[t]);
            return 2 * dKey + U * (4 * (ht + Math.abs(lse) + keyMax[t] + 1) + e + k + 10);
        }

        private int[] realTokens(int g, int gs) {
            return java.util.stream.IntStream.range(g * gs, (g + 1) * gs).filter(t -> f.router().realTokens()[t]).toArray();
        }

        double importanceLossBound(double[] relGate, int[] selected) {
            int groups = f.plan().groups();
            double total = 0;
            for (int g = 0; g < groups; g++) {
                double[] err = importanceError(g, relGate, selected);
                double[] v = java.util.Arrays.copyOfRange(f.importance(), g * e, (g + 1) * e);
                double[] dcv = io.github.moe4j.reference.CoefficientOfVariation.squaredBackward(v, 1);
                for (int ex = 0; ex < e; ex++) {
                    total += Math.abs(dcv[ex]) * err[ex];
                }
            }
            return total / groups;
        }

        /** The error bound of each element of group g's importance vector. */
        double[] importanceError(int g, double[] relGate, int[] selected) {
            int gs = tokens / f.plan().groups();
            double[] gb = f.plan().gateBeforeCapacity();
            {
                double[] err = new double[e];
                double[] abs = new double[e];
                int[] real = realTokens(g, gs);
                for (int t : real) {
                    for (int j = 0; j < k; j++) {
                        int ex = selected[t * k + j];
                        if (ex >= 0) {
                            // the gate before capacity has the same relative bound as the combine weight
                            err[ex] += relGate[t] * Math.abs(gb[t * k + j]);
                            abs[ex] += Math.abs(gb[t * k + j]);
                        }
                    }
                }
                for (int ex = 0; ex < e; ex++) {
                    err[ex] += real.length * U * abs[ex];
                }
                return err;
            }
        }

        double loadLossBound(double[] dzMax) {
            if (f.router().probInTopK() == null) {
                return 0;
            }
            int groups = f.plan().groups();
            double total = 0;
            for (int g = 0; g < groups; g++) {
                double[] err = loadError(g, dzMax);
                double[] v = java.util.Arrays.copyOfRange(f.loadVector(), g * e, (g + 1) * e);
                double[] dcv = io.github.moe4j.reference.CoefficientOfVariation.squaredBackward(v, 1);
                for (int ex = 0; ex < e; ex++) {
                    total += Math.abs(dcv[ex]) * err[ex];
                }
            }
            return total / groups;
        }

        /** The error bound of each element of group g's smooth load vector. */
        double[] loadError(int g, double[] dzMax) {
            double[] prob = f.router().probInTopK();
            double[] z = f.router().logits();
            double[] keys = f.router().keys();
            double[] sigma = f.router().noiseStd();
            int gs = tokens / f.plan().groups();
            {
                double[] err = new double[e];
                double[] abs = new double[e];
                int[] real = realTokens(g, gs);
                for (int t : real) {
                    int[] order = io.github.moe4j.reference.TopK.ofRow(keys, t * e, e, k + 1);
                    double thrIn = keys[t * e + order[k]];
                    for (int i = 0; i < e; i++) {
                        boolean in = keys[t * e + i] > thrIn;
                        int thrExpert = in ? order[k] : order[k - 1];
                        double v = z[t * e + i] - keys[t * e + thrExpert];
                        double s = sigma[t * e + i];
                        double dKeyThr = dzMax[t] + dKeyMax[t];
                        double dp = io.github.moe4j.reference.NoisyTopKRouter.normalCdfDv(v, s) * (dzMax[t] + dKeyThr + 3 * U * Math.abs(v))
                                + Math.abs(io.github.moe4j.reference.NoisyTopKRouter.normalCdfDsigma(v, s)) * dSigma[t * e + i] + 16 * U;
                        err[i] += dp;
                        abs[i] += Math.abs(prob[t * e + i]);
                    }
                }
                for (int ex = 0; ex < e; ex++) {
                    err[ex] += real.length * U * abs[ex];
                }
                return err;
            }
        }
    }
}

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
        int k = config.topK();
        int d = config.modelDim();
        try (MoeForward got = layer.forward(input, options)) {
            Routing r = got.routing();
            ReferenceForward oracle = ref.forward(input.toDoubleArray(), tokens, options);
            double[] keys = oracle.router().keys();
            int[] sel = r.experts2d();
            int[] want = oracle.plan().selected();
            int differing = 0;
            for (int t = 0; t < tokens; t++) {
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
            double totalWant = adopted.losses().total();
            assertTrue(Math.abs(got.losses().total() - totalWant) <= config.losses().aux() * auxBound
                    + config.losses().z() * SECOND_ORDER_FACTOR * zBound + 1e-300, "total loss: got " + got.losses().total() + ", oracle " + totalWant);
            return new Report(tokens, differing, worst, maxErr, worstGate, maxGateErr, auxErr, zErr);
        }
    }

}

package io.github.moe4j.conformance.float32;

import io.github.moe4j.api.AuxNormalization;
import io.github.moe4j.api.ExpertChoiceRouterConfig;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.Freeze;
import io.github.moe4j.api.GateNormalization;
import io.github.moe4j.api.Mode;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeGradients;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeLosses;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.NonFiniteException;
import io.github.moe4j.api.PaddingPolicy;
import io.github.moe4j.api.RenormTiming;
import io.github.moe4j.api.RouterNoise;
import io.github.moe4j.api.Routing;
import io.github.moe4j.api.SecondExpertPolicy;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import io.github.moe4j.reference.CapacityAssigner;
import io.github.moe4j.reference.ExpertNetwork;
import io.github.moe4j.reference.NoisyTopKRouter;
import io.github.moe4j.reference.ReferenceForward;
import io.github.moe4j.reference.ReferenceLayer;
import io.github.moe4j.reference.TopK;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * The forward pass computed in float32 arithmetic throughout, the way a GPU backend computes it:
 * every product, sum, exponential and division is rounded to float; dot products accumulate in
 * float in index order; elementwise functions (exp, log, erf, tanh) are evaluated in double and
 * rounded once, as a correctly rounded device library would. The discrete steps (top-k, capacity
 * assignment) reuse the reference's logic on the float values. Backward is the reference's on this
 * layer's own routing (so only the forward's float32 error is measured).
 */
final class Float32Layer implements MoeLayer {
    private final MoeConfig config;
    private final MoeWeights weights;
    private final ReferenceLayer reference;
    private final float[] wr;
    private final float[] br;
    private final float[] wn;
    private final float[] wIn;
    private final float[] wGate;
    private final float[] wOut;
    private final float[] bIn;
    private final float[] bOut;

    Float32Layer(MoeConfig config, MoeWeights weights) {
        this.config = config;
        this.weights = weights.validate(config);
        this.reference = new ReferenceLayer(config, weights);
        this.wr = weights.router().toArray();
        this.br = weights.routerBias() == null ? null : weights.routerBias().toArray();
        this.wn = weights.noiseRouter() == null ? null : weights.noiseRouter().toArray();
        this.wIn = weights.wIn().toArray();
        this.wGate = weights.wGate() == null ? null : weights.wGate().toArray();
        this.wOut = weights.wOut().toArray();
        this.bIn = weights.bIn() == null ? null : weights.bIn().toArray();
        this.bOut = weights.bOut() == null ? null : weights.bOut().toArray();
    }

    @Override
    public MoeConfig config() {
        return config;
    }

    record Result(Float32Layer owner, Tensor input, ForwardOptions options, Tensor output, Routing routing, MoeLosses losses)
            implements MoeForward {
        @Override
        public void close() {
            // nothing to release
        }
    }

    @Override
    public MoeForward forward(Tensor input, ForwardOptions options) {
        int d = config.modelDim();
        int e = config.experts();
        if (input.rank() != 2 || input.dim(1) != d) {
            throw new IllegalArgumentException("input has shape " + Arrays.toString(input.shape()) + ", expected [T, " + d + "]");
        }
        int t = input.dim(0);
        input.requireFinite("input");
        options.validate(t);
        RouterNoise noise = options.noiseFor(config, t);
        float[] x = input.toArray();
        float[] xr = x;
        float[] xe = x;
        if (noise.jitter() != null) {
            float[] u = noise.jitter().toArray();
            xr = new float[x.length];
            for (int i = 0; i < x.length; i++) {
                xr[i] = x[i] * u[i];
            }
            if (((TokenChoiceRouterConfig) config.router()).jitterTarget() == TokenChoiceRouterConfig.JitterTarget.ROUTER_AND_EXPERTS) {
                xe = xr;
            }
        }
        float[] z = matmul(xr, t, d, wr, e, br);
        for (int i = 0; i < z.length; i++) {
            if (!Float.isFinite(z[i])) {
                throw new NonFiniteException("router logits", i, new int[] {t, e}, z[i]);
            }
        }
        float[] p = new float[t * e];
        for (int i = 0; i < t; i++) {
            softmax(z, i * e, e, p, i * e);
        }
        float[] keys = z;
        float[] sigma = null;
        boolean learned = config.router() instanceof NoisyTopKRouterConfig n && n.noise() == NoisyTopKRouterConfig.Noise.LEARNED
                && options.mode() == Mode.TRAINING;
        if (learned) {
            NoisyTopKRouterConfig n = (NoisyTopKRouterConfig) config.router();
            float[] raw = matmul(x, t, d, wn, e, null);
            float[] eps = noise.logitNoise().toArray();
            sigma = new float[t * e];
            keys = new float[t * e];
            for (int i = 0; i < keys.length; i++) {
                sigma[i] = (float) NoisyTopKRouter.softplus(raw[i]) + (float) n.noiseEpsilon();
                keys[i] = z[i] + eps[i] * sigma[i];
            }
        }
        boolean[] real = new boolean[t];
        for (int i = 0; i < t; i++) {
            real[i] = options.paddingMask() == null || options.paddingMask().get(i) == 1f;
        }
        int groups = options.groups();
        int size = t / groups;
        int cap = config.capacityPerExpert(size);
        int m = config.choicesPerToken();
        int[] selected = new int[t * m];
        int[] slot = new int[t * m];
        float[] before = new float[t * m];
        float[] gate = new float[t * m];
        Arrays.fill(selected, -1);
        Arrays.fill(slot, -1);
        int[] load = new int[e];
        int[] kept = new int[e];
        if (config.router() instanceof ExpertChoiceRouterConfig) {
            for (int g = 0; g < groups; g++) {
                List<Integer> eligible = new ArrayList<>();
                for (int i = g * size; i < (g + 1) * size; i++) {
                    if (routed(real, i)) {
                        eligible.add(i);
                    }
                }
                for (int x2 = 0; x2 < e; x2++) {
                    double[] s = new double[eligible.size()];
                    for (int a = 0; a < s.length; a++) {
                        s[a] = p[eligible.get(a) * e + x2];
                    }
                    int[] best = TopK.ofRow(s, 0, s.length, Math.min(cap, s.length));
                    for (int c = 0; c < best.length; c++) {
                        int i = eligible.get(best[c]);
                        selected[i * m + x2] = x2;
                        slot[i * m + x2] = c;
                        gate[i * m + x2] = p[i * e + x2];
                        before[i * m + x2] = p[i * e + x2];
                    }
                    load[x2] += best.length;
                    kept[x2] += best.length;
                }
            }
        } else {
            int k = m;
            double[] wide = new double[keys.length];
            for (int i = 0; i < keys.length; i++) {
                wide[i] = keys[i];
            }
            boolean[] policyDropped = new boolean[t * k];
            for (int i = 0; i < t; i++) {
                if (!routed(real, i)) {
                    continue;
                }
                System.arraycopy(TopK.ofRow(wide, i * e, e, k), 0, selected, i * k, k);
                float[] g = gatesBefore(z, p, keys, i, Arrays.copyOfRange(selected, i * k, (i + 1) * k));
                System.arraycopy(g, 0, before, i * k, k);
                if (config.router() instanceof TokenChoiceRouterConfig tc && tc.secondExpertPolicy().kind() == SecondExpertPolicy.Kind.RANDOM
                        && noise.secondExpertUniform() != null) {
                    policyDropped[i * k + 1] = !(noise.secondExpertUniform().get(i) < g[1] / (float) tc.secondExpertPolicy().threshold());
                }
            }
            boolean after = config.router() instanceof TokenChoiceRouterConfig tc && tc.gates() == GateNormalization.RENORMALIZE
                    && tc.renormTiming() == RenormTiming.AFTER_CAPACITY;
            for (int g = 0; g < groups; g++) {
                List<CapacityAssigner.Assignment> asks = new ArrayList<>();
                List<Integer> where = new ArrayList<>();
                for (int i = g * size; i < (g + 1) * size; i++) {
                    for (int j = 0; j < k; j++) {
                        int x2 = selected[i * k + j];
                        if (x2 >= 0 && !policyDropped[i * k + j]) {
                            float priorityGate = after ? p[i * e + x2] : before[i * k + j];
                            asks.add(new CapacityAssigner.Assignment(i, j, x2, priorityGate, p[i * e + selected[i * k]]));
                            where.add(i * k + j);
                        }
                    }
                }
                int[] s = CapacityAssigner.assign(asks, e, cap, config.priority());
                for (int a = 0; a < s.length; a++) {
                    slot[where.get(a)] = s[a];
                }
            }
            for (int i = 0; i < t; i++) {
                if (selected[i * k] < 0) {
                    continue;
                }
                int[] keptExperts = new int[k];
                int nk = 0;
                for (int j = 0; j < k; j++) {
                    load[selected[i * k + j]]++;
                    if (slot[i * k + j] >= 0) {
                        kept[selected[i * k + j]]++;
                        keptExperts[nk++] = selected[i * k + j];
                    }
                }
                if (after) {
                    float[] r = subsetSoftmax(z, i * e, Arrays.copyOf(keptExperts, nk));
                    for (int j = 0, q = 0; j < k; j++) {
                        gate[i * k + j] = slot[i * k + j] >= 0 ? r[q++] : 0f;
                    }
                } else {
                    for (int j = 0; j < k; j++) {
                        gate[i * k + j] = slot[i * k + j] >= 0 ? before[i * k + j] : 0f;
                    }
                }
            }
        }
        float[] y = new float[t * d];
        for (int i = 0; i < t; i++) {
            for (int j = 0; j < m; j++) {
                if (slot[i * m + j] >= 0) {
                    float[] f = expert(selected[i * m + j], xe, i * d);
                    float g = gate[i * m + j];
                    for (int c = 0; c < d; c++) {
                        y[i * d + c] += g * f[c];
                    }
                }
            }
        }
        MoeLosses losses = losses(z, p, keys, sigma, selected, before, real, t, groups, learned);
        Routing routing = new Routing(t, e, m, groups, cap, selected, gate, slot, load, kept);
        return new Result(this, input, options, Tensor.of(y, t, d), routing, losses);
    }

    private boolean routed(boolean[] real, int i) {
        return real[i] || config.padding() == PaddingPolicy.ROUTED;
    }

    private float[] gatesBefore(float[] z, float[] p, float[] keys, int i, int[] s) {
        int e = config.experts();
        if (config.router() instanceof NoisyTopKRouterConfig) {
            return subsetSoftmax(keys, i * e, s);
        }
        TokenChoiceRouterConfig tc = (TokenChoiceRouterConfig) config.router();
        if (tc.gates() == GateNormalization.NONE) {
            float[] g = new float[s.length];
            for (int j = 0; j < s.length; j++) {
                g[j] = p[i * e + s[j]];
            }
            return g;
        }
        return subsetSoftmax(z, i * e, s);
    }

    private float[] expert(int x2, float[] x, int off) {
        int d = config.modelDim();
        int h = config.hiddenDim();
        float[] hidden = new float[h];
        for (int i = 0; i < h; i++) {
            float a = bIn == null ? 0f : bIn[x2 * h + i];
            float b = 0f;
            for (int j = 0; j < d; j++) {
                a += x[off + j] * wIn[(x2 * d + j) * h + i];
                if (wGate != null) {
                    b += x[off + j] * wGate[(x2 * d + j) * h + i];
                }
            }
            float phi = (float) ExpertNetwork.activate(config.activation(), a);
            hidden[i] = wGate == null ? phi : phi * b;
        }
        float[] out = new float[d];
        for (int j = 0; j < d; j++) {
            float s = bOut == null ? 0f : bOut[x2 * d + j];
            for (int i = 0; i < h; i++) {
                s += hidden[i] * wOut[(x2 * h + i) * d + j];
            }
            out[j] = s;
        }
        return out;
    }

    private MoeLosses losses(float[] z, float[] p, float[] keys, float[] sigma, int[] selected, float[] before, boolean[] real,
                             int t, int groups, boolean learned) {
        int e = config.experts();
        int k = config.choicesPerToken();
        int size = t / groups;
        float aux = 0;
        float zl = 0;
        float imp = 0;
        float ld = 0;
        for (int g = 0; g < groups; g++) {
            List<Integer> r = new ArrayList<>();
            for (int i = g * size; i < (g + 1) * size; i++) {
                if (real[i]) {
                    r.add(i);
                }
            }
            float zs = 0;
            for (int i : r) {
                float lse = lse(z, i * e, e);
                zs += lse * lse;
            }
            zl += r.isEmpty() ? 0f : zs / r.size();
            if (config.router() instanceof TokenChoiceRouterConfig && !r.isEmpty()) {
                AuxNormalization norm = config.losses().auxNormalization();
                float[] f = new float[e];
                for (int i : r) {
                    for (int j = 0; j < (norm == AuxNormalization.TOP1 ? 1 : k); j++) {
                        if (selected[i * k + j] >= 0) {
                            f[selected[i * k + j]] += 1f;
                        }
                    }
                }
                float scale = norm == AuxNormalization.TOPK_NORMALIZED ? 1f / (k * r.size()) : 1f / r.size();
                float sum = 0;
                for (int x2 = 0; x2 < e; x2++) {
                    float mean = 0;
                    for (int i : r) {
                        mean += p[i * e + x2];
                    }
                    sum += f[x2] * scale * (mean / r.size());
                }
                aux += e * sum;
            }
            if (config.router() instanceof NoisyTopKRouterConfig) {
                float[] importance = new float[e];
                float[] load = new float[e];
                for (int i : r) {
                    for (int j = 0; j < k; j++) {
                        if (selected[i * k + j] >= 0) {
                            importance[selected[i * k + j]] += before[i * k + j];
                        }
                    }
                }
                if (learned && k < e) {
                    double[] wide = new double[keys.length];
                    for (int i = 0; i < keys.length; i++) {
                        wide[i] = keys[i];
                    }
                    for (int i : r) {
                        int[] order = TopK.ofRow(wide, i * e, e, k + 1);
                        float in = keys[i * e + order[k]];
                        float out = keys[i * e + order[k - 1]];
                        for (int x2 = 0; x2 < e; x2++) {
                            float thr = keys[i * e + x2] > in ? in : out;
                            load[x2] += (float) NoisyTopKRouter.normalCdf(z[i * e + x2] - thr, sigma[i * e + x2]);
                        }
                    }
                } else {
                    for (int i : r) {
                        for (int j = 0; j < k; j++) {
                            if (selected[i * k + j] >= 0) {
                                load[selected[i * k + j]] += 1f;
                            }
                        }
                    }
                }
                imp += cv2(importance);
                ld += cv2(load);
            }
        }
        return MoeLosses.weighted(aux / groups, zl / groups, imp / groups, ld / groups, config.losses());
    }

    private static float cv2(float[] v) {
        float n = v.length + 1e-10f;
        float sum = 0;
        for (float x : v) {
            sum += x;
        }
        float mean = sum / n;
        float var = 0;
        for (float x : v) {
            var += (x - mean) * (x - mean);
        }
        var /= n;
        return var / (mean * mean + 1e-10f);
    }

    @Override
    public MoeGradients backward(MoeForward forward, Tensor dOutput, Set<Freeze> frozen) {
        if (!(forward instanceof Result r) || r.owner() != this) {
            throw new IllegalArgumentException("forward is not a result of this layer");
        }
        ReferenceForward f = reference.forwardWithRouting(r.input(), r.routing(), r.options());
        return reference.backward(f, dOutput, frozen);
    }

    @Override
    public void close() {
        // nothing to release
    }

    // ---------------------------------------------------------------------------------------------
    // float32 kernels

    private static float[] matmul(float[] a, int rows, int inner, float[] b, int cols, float[] bias) {
        float[] c = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < cols; j++) {
                float s = bias == null ? 0f : bias[j];
                for (int i = 0; i < inner; i++) {
                    s += a[r * inner + i] * b[i * cols + j];
                }
                c[r * cols + j] = s;
            }
        }
        return c;
    }

    private static float exp(float v) {
        return (float) Math.exp(v);
    }

    private static float lse(float[] z, int off, int n) {
        float m = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            m = Math.max(m, z[off + i]);
        }
        float s = 0;
        for (int i = 0; i < n; i++) {
            s += exp(z[off + i] - m);
        }
        return m + (float) Math.log(s);
    }

    private static void softmax(float[] z, int off, int n, float[] out, int outOff) {
        float m = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            m = Math.max(m, z[off + i]);
        }
        float s = 0;
        for (int i = 0; i < n; i++) {
            out[outOff + i] = exp(z[off + i] - m);
            s += out[outOff + i];
        }
        for (int i = 0; i < n; i++) {
            out[outOff + i] /= s;
        }
    }

    private static float[] subsetSoftmax(float[] z, int off, int[] subset) {
        float m = Float.NEGATIVE_INFINITY;
        for (int s : subset) {
            m = Math.max(m, z[off + s]);
        }
        float sum = 0;
        float[] g = new float[subset.length];
        for (int j = 0; j < subset.length; j++) {
            g[j] = exp(z[off + subset[j]] - m);
            sum += g[j];
        }
        for (int j = 0; j < subset.length; j++) {
            g[j] /= sum;
        }
        return g;
    }

}

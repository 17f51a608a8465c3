package io.github.moe4j.reference;

import io.github.moe4j.api.ExpertChoiceRouterConfig;
import io.github.moe4j.api.Freeze;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.util.Set;

/**
 * {@link ReferenceLayer}'s backward (SPEC §10): the stages in reverse, each quoting the forward line
 * it differentiates. Selections, slots, drops, f and the noise are constants; everything is read
 * from the {@link ReferenceForward} cache, nothing is recomputed from the weights except what the
 * forward also derived from them (logit-sum-exps, top-(k+1) orders). The layer checks the
 * arguments; this class does the arithmetic:
 * <ol>
 * <li>{@link #expertsBackward}: combine, experts and dispatch, giving \( \partial L / \partial g \), each
 *     row's input gradient and the expert weights' gradients;</li>
 * <li>{@link #routingBackward}: gates, softmax and the losses, giving \( \partial L / \partial z \) (and
 *     what reaches the learned noise);</li>
 * <li>{@link #routerBackward}: the router's linear maps and jitter, giving the router weights'
 *     gradients and the input's.</li>
 * </ol>
 */
final class ReferenceBackward {
    private final MoeConfig config;
    private final ReferenceWeights weights;

    ReferenceBackward(MoeConfig config, ReferenceWeights weights) {
        this.config = config;
        this.weights = weights;
    }

    /** Every gradient of \( \sum dY \odot y \) plus the configuration's weighted losses (see {@link ReferenceLayer#backward(ReferenceForward, double[], Set)}). */
    ReferenceGradients gradients(ReferenceForward f, double[] dY, Set<Freeze> frozen) {
        int tokens = f.tokens();
        ReferenceGradients grads = ReferenceGradients.zeros(config, tokens, frozen);
        double[] dGate = new double[tokens * f.plan().choices()];
        double[] dExpertInput = new double[tokens * config.modelDim()];
        long expertWork = expertsBackward(f, dY, dGate, dExpertInput, frozen.contains(Freeze.EXPERTS) ? null : grads);
        RouterGradient dRouter = routingBackward(f, dGate, LossCoefficients.of(config.losses()));
        long routerWork = routerBackward(f, dRouter, dExpertInput, grads);
        return grads.withWork(new ReferenceGradients.Work(expertWork, routerWork));
    }

    /** The router half of the backward, from gate gradients and loss coefficients; expert components are null. */
    ReferenceGradients routerOnly(ReferenceForward f, double[] dGate, LossCoefficients c, Set<Freeze> frozen) {
        Set<Freeze> withExperts = java.util.EnumSet.of(Freeze.EXPERTS);
        withExperts.addAll(frozen);
        ReferenceGradients grads = ReferenceGradients.zeros(config, f.tokens(), withExperts);
        long routerWork = routerBackward(f, routingBackward(f, dGate, c), new double[f.tokens() * config.modelDim()], grads);
        return grads.withWork(new ReferenceGradients.Work(0, routerWork));
    }

    /** \( \partial L / \partial z \), [T, E], from gate gradients and loss coefficients. */
    double[] logitGradient(ReferenceForward f, double[] dGate, LossCoefficients c) {
        return routingBackward(f, dGate, c).dLogits();
    }

    /** The loss coefficients backward uses: the configuration's, or one loss with coefficient 1. */
    record LossCoefficients(double aux, double z, double importance, double load) {
        static LossCoefficients of(io.github.moe4j.api.LossWeights w) {
            return new LossCoefficients(w.aux(), w.z(), w.importance(), w.load());
        }

        static LossCoefficients of(LossTerm term) {
            return new LossCoefficients(term == LossTerm.AUX ? 1 : 0, term == LossTerm.Z ? 1 : 0,
                    term == LossTerm.IMPORTANCE ? 1 : 0, term == LossTerm.LOAD ? 1 : 0);
        }
    }

    /**
     * What reaches the router's linear maps: \( \partial L / \partial z \), [T, E], and (learned noise,
     * training) \( \partial L / \partial (x W_{noise}) \), [T, E], else null.
     */
    private record RouterGradient(double[] dLogits, double[] dRawNoiseStd) {}

    /**
     * Backward of stages 5, 4 and 3 (combine, experts, dispatch): adds \( \partial L / \partial g \) to
     * {@code dGate}, each row's input gradient to {@code dExpertInput} and, unless {@code dW} is null,
     * the expert weight gradients to {@code dW}.
     *
     * @return the multiply-adds spent on expert weight gradients
     */
    private long expertsBackward(ReferenceForward f, double[] dY, double[] dGate, double[] dExpertInput, ReferenceGradients dW) {
        RoutingPlan plan = f.plan();
        ReferenceLayer.Dispatch dispatch = f.dispatch();
        int m = plan.choices();
        int d = config.modelDim();
        long work = 0;
        for (int ex = 0; ex < config.experts(); ex++) {
            int n = dispatch.tokenOf()[ex].length;
            double[][] dF = new double[n][d];
            int[] dxOffset = new int[n];
            for (int i = 0; i < n; i++) {
                int t = dispatch.tokenOf()[ex][i];
                int j = dispatch.choiceOf()[ex][i];
                ExpertNetwork.Activations cache = f.experts().activations()[ex][i];
                // forward (combine): y[t * d + c] += g * f[c], so dg = Σ_c dY[t, c] f[c] and df[c] = g dY[t, c]
                double g = plan.gate()[t * m + j];
                double dg = 0;
                for (int c = 0; c < d; c++) {
                    dg += dY[t * d + c] * cache.output()[c];
                    dF[i][c] = g * dY[t * d + c];
                }
                dGate[t * m + j] += dg;
                // forward (dispatch): inputs[ex][i * d + c] = x[t * d + c], so the row's dx goes back to token t
                dxOffset[i] = t * d;
            }
            ExpertNetwork.RowGradient[] rows = ExpertNetwork.backward(weights, config.activation(), ex,
                    f.experts().activations()[ex], dF, dExpertInput, dxOffset);
            if (dW != null) {
                work += ExpertNetwork.weightGradients(weights, ex, dispatch.inputs()[ex], f.experts().activations()[ex], rows, dW);
            }
        }
        return work;
    }

    /**
     * Backward of stages 6 and 2 and of the router's nonlinear part: from \( \partial L / \partial g \)
     * and the weighted losses to \( \partial L / \partial z \) and \( \partial L / \partial (x W_{noise}) \).
     */
    private RouterGradient routingBackward(ReferenceForward f, double[] dGate, LossCoefficients c) {
        RouterOutput r = f.router();
        RoutingPlan plan = f.plan();
        int tokens = plan.tokens();
        int e = config.experts();
        int m = plan.choices();
        int groups = plan.groups();
        int groupSize = tokens / groups;
        boolean noisy = config.router() instanceof NoisyTopKRouterConfig;
        double[] dLogits = new double[tokens * e];
        double[] dProbs = new double[tokens * e];
        double[] dKeys = new double[tokens * e];
        double[] dSigma = r.noiseStd() == null ? null : new double[tokens * e];
        double[] dGateBefore = new double[tokens * m];
        double[] dProbInTopK = r.probInTopK() == null ? null : new double[tokens * e];

        // Stage 6: losses. forward: MoeLosses.weighted(aux / groups, z / groups, importanceLoss / groups, loadLoss / groups, ...)
        for (int g = 0; g < groups; g++) {
            int[] real = r.realTokens(g, groupSize);
            // forward: z += RouterZLoss.value(r.logits(), e, real)
            if (c.z() != 0) {
                RouterZLoss.backward(r.logits(), r.probs(), e, real, c.z() / groups, dLogits);
            }
            // forward: aux += LoadBalancingLoss.value(f, LoadBalancingLoss.meanProbability(r.probs(), e, real))
            if (c.aux() != 0 && config.router() instanceof TokenChoiceRouterConfig) {
                double[] fraction = LoadBalancingLoss.dispatchFraction(plan.selected(), config.topK(), e, real,
                        config.losses().auxNormalization());
                LoadBalancingLoss.backward(fraction, real, c.aux() / groups, dProbs);
            }
            if (noisy && c.importance() != 0) {
                // forward: importanceLoss += ImportanceLoss.value(importance), importance from plan.gateBeforeCapacity()
                double[] importance = java.util.Arrays.copyOfRange(f.importance(), g * e, (g + 1) * e);
                double[] dImportance = CoefficientOfVariation.squaredBackward(importance, c.importance() / groups);
                ImportanceLoss.importanceBackward(plan.selected(), m, real, dImportance, dGateBefore);
            }
            if (noisy && c.load() != 0 && dProbInTopK != null) {
                // forward: loadLoss += LoadLoss.value(load), load = LoadLoss.smoothLoad(r.probInTopK(), e, real)
                double[] load = java.util.Arrays.copyOfRange(f.loadVector(), g * e, (g + 1) * e);
                double[] dLoad = CoefficientOfVariation.squaredBackward(load, c.load() / groups);
                LoadLoss.smoothLoadBackward(dLoad, real, dProbInTopK);
            }
        }

        // Stage 2: gates. Selection, slots and drops are constants.
        for (int t = 0; t < tokens; t++) {
            if (config.router() instanceof ExpertChoiceRouterConfig) {
                for (int ex = 0; ex < e; ex++) {
                    // forward (routeExpertChoice): gate[t * e + ex] = r.probs()[t * e + ex] for a taken token
                    if (plan.slot()[t * e + ex] >= 0) {
                        dProbs[t * e + ex] += dGate[t * e + ex];
                    }
                }
                continue;
            }
            if (plan.selected()[t * m] < 0) {
                continue;
            }
            int[] selected = java.util.Arrays.copyOfRange(plan.selected(), t * m, (t + 1) * m);
            boolean[] kept = new boolean[m];
            for (int j = 0; j < m; j++) {
                kept[j] = plan.isKept(t, j);
            }
            double[] before = java.util.Arrays.copyOfRange(plan.gateBeforeCapacity(), t * m, (t + 1) * m);
            if (noisy) {
                // forward (gatesBefore, gatesAfter): g = Softmax.overSubset(r.keys(), t * e, s); g[j] = kept[j] ? g[j] : 0
                double[] dBefore = new double[m];
                for (int j = 0; j < m; j++) {
                    dBefore[j] = (kept[j] ? dGate[t * m + j] : 0) + dGateBefore[t * m + j];
                }
                Softmax.overSubsetBackward(before, selected, dBefore, dKeys, t * e);
            } else {
                double[] after = java.util.Arrays.copyOfRange(plan.gate(), t * m, (t + 1) * m);
                double[] dAfter = java.util.Arrays.copyOfRange(dGate, t * m, (t + 1) * m);
                TokenChoiceRouter.gatesAfterCapacityBackward((TokenChoiceRouterConfig) config.router(), t * e, selected, kept,
                        before, after, dAfter, dLogits, dProbs);
            }
        }

        // Stage 1, noisy top-k. forward: prob = NoisyTopKRouter.probInTopK(z, keys, sigma, t * e, e, order, n.k())
        if (dProbInTopK != null && c.load() != 0) {
            int k = config.topK();
            for (int t = 0; t < tokens; t++) {
                int[] order = TopK.ofRow(r.keys(), t * e, e, k + 1);
                NoisyTopKRouter.probInTopKBackward(r.logits(), r.keys(), r.noiseStd(), t * e, e, order, k, dProbInTopK,
                        dLogits, dKeys, dSigma);
            }
        }
        double[] dRawStd = null;
        if (dSigma != null) {
            dRawStd = new double[tokens * e];
            for (int i = 0; i < tokens * e; i++) {
                // forward: keys[i] = z[i] + eps[i] * sigma[i]
                dLogits[i] += dKeys[i];
                dSigma[i] += r.noise()[i] * dKeys[i];
                // forward: sigma[i] = NoisyTopKRouter.noiseStd(rawStd[i], n.noiseEpsilon())
                dRawStd[i] = NoisyTopKRouter.noiseStdBackward(r.rawNoiseStd()[i], dSigma[i]);
            }
        } else if (noisy) {
            // forward: keys = z (no noise: inference, or Noise.NONE)
            for (int i = 0; i < tokens * e; i++) {
                dLogits[i] += dKeys[i];
            }
        }
        // forward: p = Softmax.rows(z, tokens, e)
        for (int t = 0; t < tokens; t++) {
            Softmax.softmaxBackward(r.probs(), dProbs, t * e, e, dLogits);
        }
        return new RouterGradient(dLogits, dRawStd);
    }

    /**
     * Backward of the router's linear maps and of the jitter: from \( \partial L / \partial z \),
     * \( \partial L / \partial (x W_{noise}) \) and the experts' input gradient to \( \partial L / \partial x \)
     * and (unless frozen: null in {@code grads}) \( \partial L / \partial W_r \), \( \partial L / \partial b_r \),
     * \( \partial L / \partial W_{noise} \).
     *
     * @return the multiply-adds spent on router weight gradients
     */
    private long routerBackward(ReferenceForward f, RouterGradient dRouter, double[] dExpertInput, ReferenceGradients grads) {
        RouterOutput r = f.router();
        int tokens = f.tokens();
        int d = config.modelDim();
        int e = config.experts();
        double[] dLogits = dRouter.dLogits();
        long work = 0;
        // forward: z = matmul(routerInput, tokens, d, weights.router(), e, weights.routerBias())
        double[] dRouterInput = matmulBackwardInput(dLogits, tokens, e, weights.router(), d);
        if (grads.router() != null) {
            work += matmulBackwardWeight(r.routerInput(), dLogits, tokens, d, e, grads.router());
        }
        if (grads.routerBias() != null) {
            for (int t = 0; t < tokens; t++) {
                for (int j = 0; j < e; j++) {
                    grads.routerBias()[j] += dLogits[t * e + j];
                }
            }
            work += (long) tokens * e;
        }
        double[] dx = grads.input();
        if (dRouter.dRawNoiseStd() != null) {
            // forward: rawStd = matmul(x, tokens, d, weights.noiseRouter(), e, null); noisy top-k has no jitter, so x = routerInput
            double[] dFromNoise = matmulBackwardInput(dRouter.dRawNoiseStd(), tokens, e, weights.noiseRouter(), d);
            for (int i = 0; i < dx.length; i++) {
                dx[i] += dFromNoise[i];
            }
            if (grads.noiseRouter() != null) {
                work += matmulBackwardWeight(r.routerInput(), dRouter.dRawNoiseStd(), tokens, d, e, grads.noiseRouter());
            }
        }
        double[] u = r.jitter();
        boolean expertsJittered = u != null && r.expertInput() == r.routerInput();
        for (int i = 0; i < dx.length; i++) {
            // forward: routerInput[i] = x[i] * noise.jitter().get(i); expertInput = routerInput or x
            dx[i] += (u == null ? dRouterInput[i] : u[i] * dRouterInput[i])
                    + (expertsJittered ? u[i] * dExpertInput[i] : dExpertInput[i]);
        }
        return work;
    }

    /** Backward of {@code ReferenceLayer.matmul} with respect to a: \( \partial L / \partial a = \partial L / \partial c\; b^\top \), [rows, inner]. */
    private static double[] matmulBackwardInput(double[] dC, int rows, int cols, double[] b, int inner) {
        double[] dA = new double[rows * inner];
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < inner; i++) {
                double s = 0;
                for (int j = 0; j < cols; j++) {
                    s += dC[r * cols + j] * b[i * cols + j];
                }
                dA[r * inner + i] = s;
            }
        }
        return dA;
    }

    /**
     * Backward of {@code ReferenceLayer.matmul} with respect to b: adds \( a^\top \partial L / \partial c \), [inner, cols], to {@code dB}.
     *
     * @return the multiply-adds done
     */
    private static long matmulBackwardWeight(double[] a, double[] dC, int rows, int inner, int cols, double[] dB) {
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < inner; i++) {
                for (int j = 0; j < cols; j++) {
                    dB[i * cols + j] += a[r * inner + i] * dC[r * cols + j];
                }
            }
        }
        return (long) rows * inner * cols;
    }
}

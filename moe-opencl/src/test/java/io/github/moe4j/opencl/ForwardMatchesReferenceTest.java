package io.github.moe4j.opencl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.moe4j.api.LossWeights;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.Priority;
import io.github.moe4j.api.Routing;
import io.github.moe4j.reference.ReferenceForward;
import io.github.moe4j.reference.ReferenceLayer;
import io.github.moe4j.reference.RoutingPlan;
import org.junit.jupiter.api.Test;

/**
 * The OpenCL forward against the double-precision reference over random token-choice cases
 * ({@link MoeCase}), with SPEC §11's tolerance model.
 *
 * <p>Routing: every chosen expert's oracle logit is at least the oracle's k-th logit minus
 * δ = 1e-4·(1 + max|z_t|). Where the selection equals the oracle's, slots, load and kept must be
 * equal too (except where two competing priority keys are within float error, {@link #KEY_TIE}).
 * Outputs, gates and losses are always compared with {@code ReferenceLayer#forwardWithRouting} on
 * the backend's own routing.
 *
 * <p>Tolerance, derived before measuring: with u = 2^-24 (float32 unit roundoff) a float sum of n
 * products is off by at most about n·u times the sum of the products' magnitudes. The longest chain
 * to an output element is the router GEMM (d), the two expert GEMMs (d then h), the softmax and
 * gate arithmetic (a few roundings each, plus the relative 1.2e-7 = 2u of the erfc fit) and the
 * combine (k terms): n = 2d + h + 2k + 16. Logit errors enter the gates through exp, multiplied by
 * up to 1 + max|z|. So each element is allowed
 * {@code n·u·(1 + max|z|)·(|want| + max|want|)}, the second term standing for the magnitudes of
 * cancelled terms. Losses (sums over T tokens and E experts of softmax values and lse²):
 * {@code (T + E + 2d + 16)·u·(1 + max|z|)²·|want|} plus the same times 1e-6 absolute.
 */
class ForwardMatchesReferenceTest {
    static final double U = Math.ulp(1.0f) / 2;
    /** Two priority keys closer than this may be ordered differently by float32 and double. */
    static final double KEY_TIE = 1e-5;
    static final int CASES = 60;

    @Test
    void forwardMatchesReferenceOverRandomCases() {
        OpenClBackend backend = OpenClTestSupport.backend();
        Stats stats = new Stats();
        for (int i = 0; i < CASES; i++) {
            MoeCase c = MoeCase.random(0x5eed0000L + i);
            try (MoeLayer layer = backend.createLayer(c.config(), c.weights())) {
                check(c, layer.forward(c.input(), c.options()), stats);
            } catch (AssertionError e) {
                throw new AssertionError(c + ": " + e.getMessage(), e);
            }
        }
        System.out.printf("[moe-opencl tests] %d cases, %d tokens: worst output error %.3g (%.3g of its tolerance), worst gate error %.3g,"
                        + " worst loss error %.3g relative; %d tokens whose selection differs from the oracle's within δ,"
                        + " %d cases with exact ties, %d with priority-key near-ties%n", CASES, stats.tokens, stats.worstOutput,
                stats.worstOutputRatio, stats.worstGate, stats.worstLoss, stats.nearTieTokens, stats.exactTieCases, stats.keyTieCases);
        assertTrue(stats.exactTieCases > 0, "no case had an exact tie; the generator should make some");
    }

    /** Expert choice (SPEC §7): each expert's C best tokens, slots by score, gates s, output and z loss agree with the reference. */
    @Test
    void expertChoiceForwardMatchesReference() {
        OpenClBackend backend = OpenClTestSupport.backend();
        Stats stats = new Stats();
        int full = 0;
        for (int i = 0; i < CASES / 2; i++) {
            MoeCase c = MoeCase.randomExpertChoice(0x00ec0000L + i);
            try (MoeLayer layer = backend.createLayer(c.config(), c.weights())) {
                MoeForward f = layer.forward(c.input(), c.options());
                check(c, f, stats);
                int groupSize = c.input().dim(0) / c.options().groups();
                int capacity = Math.min(c.config().capacityPerExpert(groupSize), groupSize);
                full += c.options().paddingMask() == null ? 1 : 0;
                if (c.options().paddingMask() == null) {
                    for (int x = 0; x < c.config().experts(); x++) {
                        assertTrue(f.routing().kept()[x] == capacity * c.options().groups(), c + ": expert " + x + " took "
                                + f.routing().kept()[x] + " tokens, not C·G = " + capacity * c.options().groups());
                    }
                }
            } catch (AssertionError e) {
                throw new AssertionError(c + ": " + e.getMessage(), e);
            }
        }
        System.out.printf("[moe-opencl tests] expert choice: %d cases, worst output error %.3g (%.3g of its tolerance), worst gate"
                + " error %.3g, worst loss error %.3g relative; %d tokens on near-ties%n", CASES / 2, stats.worstOutput,
                stats.worstOutputRatio, stats.worstGate, stats.worstLoss, stats.nearTieTokens);
        assertTrue(full > 0, "some case should have no padding, so every expert takes exactly C tokens per group");
    }

    /** Noisy top-k (SPEC §6): selection on H, gates, output, z, importance and load losses agree with the reference. */
    @Test
    void noisyTopKForwardMatchesReference() {
        OpenClBackend backend = OpenClTestSupport.backend();
        Stats stats = new Stats();
        int smooth = 0;
        for (int i = 0; i < CASES / 2; i++) {
            MoeCase c = MoeCase.randomNoisy(0x0015e000L + i);
            try (MoeLayer layer = backend.createLayer(c.config(), c.weights())) {
                check(c, layer.forward(c.input(), c.options()), stats);
                smooth += new ReferenceLayer(c.config(), c.weights()).router(c.input().toDoubleArray(), c.input().dim(0), c.options())
                        .probInTopK() != null ? 1 : 0;
            } catch (AssertionError e) {
                throw new AssertionError(c + ": " + e.getMessage(), e);
            }
        }
        System.out.printf("[moe-opencl tests] noisy top-k: %d cases (%d with the smooth load), worst output error %.3g (%.3g of its"
                + " tolerance), worst gate error %.3g, worst loss error %.3g relative (%.3g of its tolerance); %d near-tie tokens%n",
                CASES / 2, smooth, stats.worstOutput, stats.worstOutputRatio, stats.worstGate, stats.worstLoss, stats.worstLossRatio,
                stats.nearTieTokens);
        assertTrue(smooth > 0, "the generator should reach the smooth load estimator");
    }

    static final class Stats {
        int tokens;
        int nearTieTokens;
        int exactTieCases;
        int keyTieCases;
        double worstOutput;
        double worstOutputRatio;
        double worstGate;
        double worstLoss;
        double worstLossRatio;
    }

    static void check(MoeCase c, MoeForward got, Stats stats) {
        ReferenceLayer ref = new ReferenceLayer(c.config(), c.weights());
        int tokens = c.input().dim(0);
        ReferenceForward want = ref.forward(c.input().toDoubleArray(), tokens, c.options());
        RoutingPlan plan = want.plan();
        Routing routing = got.routing();
        int e = c.config().experts();
        int k = c.config().choicesPerToken();
        boolean expertChoice = c.config().router() instanceof io.github.moe4j.api.ExpertChoiceRouterConfig;
        double[] z = want.router().keys();
        double maxZ = 0;
        for (double v : z) {
            maxZ = Math.max(maxZ, Math.abs(v));
        }
        stats.tokens += tokens;
        stats.exactTieCases += c.exactTie() ? 1 : 0;

        // selection: valid top-k of the oracle's logits within δ
        boolean sameSelection = true;
        int[] mine = routing.experts2d();
        for (int t = 0; t < tokens; t++) {
            boolean tokenSame = true;
            for (int j = 0; j < k; j++) {
                tokenSame &= mine[t * k + j] == plan.selected()[t * k + j];
            }
            if (!tokenSame && expertChoice) {
                // an expert's C-th and (C+1)-th scores may be ordered differently by float32 only if they nearly tie
                sameSelection = false;
                stats.nearTieTokens++;
                assertTrue(priorityKeysNearlyTie(c, want), "token " + t + " taken by other experts than the oracle's, no near-tie");
            }
            if (!tokenSame && !expertChoice) {
                sameSelection = false;
                stats.nearTieTokens++;
                if (plan.selected()[t * k] < 0 || mine[t * k] < 0) {
                    fail("token " + t + " routed differently: oracle " + plan.selected()[t * k] + ", OpenCL " + mine[t * k]);
                }
                double rowMax = 0;
                for (int x = 0; x < e; x++) {
                    rowMax = Math.max(rowMax, Math.abs(z[t * e + x]));
                }
                double delta = 1e-4 * (1 + rowMax);
                double kth = z[t * e + plan.selected()[t * k + k - 1]];
                for (int j = 0; j < k; j++) {
                    double key = z[t * e + mine[t * k + j]];
                    assertTrue(key >= kth - delta, "token " + t + " choice " + j + ": expert " + mine[t * k + j] + " has oracle logit "
                            + key + " < k-th " + kth + " - δ " + delta);
                }
            }
        }
        if (sameSelection) {
            if (!java.util.Arrays.equals(routing.slots(), plan.slot())) {
                if (!priorityKeysNearlyTie(c, want)) {
                    assertArrayEquals(plan.slot(), routing.slots(), "slots (same selection, no priority-key near-tie)");
                }
                stats.keyTieCases++;
            } else {
                assertArrayEquals(plan.load(), routing.load(), "load");
                assertArrayEquals(plan.kept(), routing.kept(), "kept");
            }
        }

        // values, on the backend's own routing
        ReferenceForward adopted = ref.forwardWithRouting(c.input(), routing, c.options());
        int d = c.config().modelDim();
        int h = c.config().hiddenDim();
        double n = 2.0 * d + h + 2 * k + 16;
        double amp = 1 + maxZ;
        double[] y = adopted.y();
        double maxY = 0;
        for (double v : y) {
            maxY = Math.max(maxY, Math.abs(v));
        }
        for (int i = 0; i < y.length; i++) {
            double err = Math.abs(got.output().get(i) - y[i]);
            double tol = n * U * amp * (Math.abs(y[i]) + maxY);
            stats.worstOutput = Math.max(stats.worstOutput, err);
            if (tol > 0) {
                stats.worstOutputRatio = Math.max(stats.worstOutputRatio, err / tol);
            }
            if (!(err <= tol)) {
                fail("output[" + i / d + ", " + i % d + "]: OpenCL " + got.output().get(i) + ", reference " + y[i] + ", |diff| " + err
                        + " > tolerance " + tol);
            }
        }
        float[] gates = routing.gates();
        for (int i = 0; i < gates.length; i++) {
            double g = adopted.plan().gate()[i];
            double err = Math.abs(gates[i] - g);
            stats.worstGate = Math.max(stats.worstGate, err);
            double tol = n * U * amp * 2;
            if (!(err <= tol)) {
                fail("gate[" + i / k + ", " + i % k + "]: OpenCL " + gates[i] + ", reference " + g + " > tolerance " + tol);
            }
            if (routing.slots()[i] < 0 && gates[i] != 0f) {
                fail("gate[" + i / k + ", " + i % k + "] of a dropped assignment is " + gates[i] + ", not 0");
            }
        }
        double lossN = (tokens + e + 2.0 * d + 16) * U * amp * amp;
        double noisyAmp = GradientTolerance.noisyAmplification(adopted.router(), tokens, e, k);
        double[][] pairs = {{got.losses().aux(), adopted.losses().aux()}, {got.losses().z(), adopted.losses().z()},
            {got.losses().importance(), adopted.losses().importance()}, {got.losses().load(), adopted.losses().load()},
            {got.losses().total(), adopted.losses().total()}};
        String[] names = {"aux", "z", "importance", "load", "total"};
        LossWeights w = c.config().losses();
        for (int i = 0; i < pairs.length; i++) {
            double err = Math.abs(pairs[i][0] - pairs[i][1]);
            double tol = lossN * (Math.abs(pairs[i][1]) + 1e-6);
            // cv² losses: inputs (sums of T gates or P values) off by a relative lossN·E (importance) or lossN·E·noisyAmp (load)
            double impTol = GradientTolerance.ofCvSquared(lossN * e, adopted.losses().importance());
            double loadTol = GradientTolerance.ofCvSquared(lossN * e * noisyAmp, adopted.losses().load());
            if (i == 2) {
                tol = impTol;
            }
            if (i == 3) {
                tol = loadTol;
            }
            if (i == 4) {
                tol += w.importance() * impTol + w.load() * loadTol;
            }
            if (tol > 0) {
                stats.worstLossRatio = Math.max(stats.worstLossRatio, err / tol);
            }
            stats.worstLoss = Math.max(stats.worstLoss, err / Math.max(Math.abs(pairs[i][1]), 1e-30));
            if (!(err <= tol)) {
                fail("loss " + names[i] + ": OpenCL " + pairs[i][0] + ", reference " + pairs[i][1] + " > tolerance " + tol);
            }
        }
    }

    /** Whether two assignments to one expert in one group have GATE_VALUE or BATCH_PRIORITIZED keys within {@link #KEY_TIE}. */
    private static boolean priorityKeysNearlyTie(MoeCase c, ReferenceForward want) {
        Priority p = c.config().priority();
        if (c.config().router() instanceof io.github.moe4j.api.ExpertChoiceRouterConfig) {
            int e = c.config().experts();
            int tokens = want.plan().tokens();
            int groupSize = tokens / want.plan().groups();
            double[] probs = want.router().probs();
            for (int a = 0; a < tokens; a++) {
                for (int b = a + 1; b < tokens && b / groupSize == a / groupSize; b++) {
                    for (int x = 0; x < e; x++) {
                        if (Math.abs(probs[a * e + x] - probs[b * e + x]) < KEY_TIE) {
                            return true;
                        }
                    }
                }
            }
            return false;
        }
        if (p != Priority.GATE_VALUE && p != Priority.BATCH_PRIORITIZED) {
            return false;
        }
        RoutingPlan plan = want.plan();
        int k = c.config().topK();
        int e = c.config().experts();
        int tokens = plan.tokens();
        int groupSize = tokens / plan.groups();
        double[] probs = want.router().probs();
        // GATE_VALUE ranks by p when renormalising after capacity, else by the gate before capacity
        boolean byProb = c.config().router() instanceof io.github.moe4j.api.TokenChoiceRouterConfig tc
                && tc.gates() == io.github.moe4j.api.GateNormalization.RENORMALIZE
                && tc.renormTiming() == io.github.moe4j.api.RenormTiming.AFTER_CAPACITY;
        for (int a = 0; a < tokens * k; a++) {
            for (int b = a + 1; b < tokens * k; b++) {
                if (plan.selected()[a] >= 0 && plan.selected()[a] == plan.selected()[b] && a / k / groupSize == b / k / groupSize) {
                    double ka = p == Priority.BATCH_PRIORITIZED ? probs[a / k * e + plan.selected()[a / k * k]]
                            : byProb ? probs[a / k * e + plan.selected()[a]] : plan.gateBeforeCapacity()[a];
                    double kb = p == Priority.BATCH_PRIORITIZED ? probs[b / k * e + plan.selected()[b / k * k]]
                            : byProb ? probs[b / k * e + plan.selected()[b]] : plan.gateBeforeCapacity()[b];
                    if (Math.abs(ka - kb) < KEY_TIE) {
                        return true;
                    }
                }
            }
        }
        return false;
    }
}

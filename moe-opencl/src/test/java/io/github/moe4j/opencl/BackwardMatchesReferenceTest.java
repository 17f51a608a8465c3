package io.github.moe4j.opencl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.moe4j.api.Freeze;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeGradients;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.NonFiniteException;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.reference.ReferenceForward;
import io.github.moe4j.reference.ReferenceGradients;
import io.github.moe4j.reference.ReferenceLayer;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The OpenCL backward against {@code ReferenceLayer#backward} on the backend's own routing
 * ({@code forwardWithRouting}), over random cases ({@link MoeCase}) with random upstream gradients
 * and random frozen groups; tolerances from {@link GradientTolerance}.
 */
class BackwardMatchesReferenceTest {
    static final int CASES = 40;
    private static final Set<Freeze>[] FREEZES = freezes();

    @SuppressWarnings("unchecked")
    private static Set<Freeze>[] freezes() {
        return new Set[] {EnumSet.noneOf(Freeze.class), EnumSet.of(Freeze.ROUTER), EnumSet.of(Freeze.EXPERTS),
            EnumSet.allOf(Freeze.class)};
    }

    /** Every gradient (input, router, router bias, every expert weight and bias) agrees with the reference's; frozen ones are null. */
    @Test
    void backwardMatchesReferenceOverRandomCases() {
        OpenClBackend backend = OpenClTestSupport.backend();
        Map<String, double[]> worst = new LinkedHashMap<>();
        for (int i = 0; i < CASES; i++) {
            MoeCase c = MoeCase.random(0xbac0000L + i);
            Set<Freeze> frozen = FREEZES[i % FREEZES.length];
            try (MoeLayer layer = backend.createLayer(c.config(), c.weights())) {
                check(c, layer, frozen, new SplittableRandom(i), worst);
            } catch (AssertionError e) {
                throw new AssertionError(c + ", frozen " + frozen + ": " + e.getMessage(), e);
            }
        }
        StringBuilder s = new StringBuilder("[moe-opencl tests] backward, " + CASES + " cases; worst error (fraction of tolerance):");
        worst.forEach((k, v) -> s.append(String.format(" %s %.3g (%.3g)", k, v[0], v[1])));
        System.out.println(s);
        assertTrue(worst.containsKey("wGate") && worst.containsKey("bIn") && worst.containsKey("routerBias"),
                "the generator should reach every gradient: " + worst.keySet());
    }

    /** Noisy top-k: W_noise's gradient too, through the gates, the importance loss and the smooth load estimator. */
    @Test
    void noisyTopKBackwardMatchesReference() {
        OpenClBackend backend = OpenClTestSupport.backend();
        Map<String, double[]> worst = new LinkedHashMap<>();
        for (int i = 0; i < CASES / 2; i++) {
            MoeCase c = MoeCase.randomNoisy(0xbac1000L + i);
            Set<Freeze> frozen = FREEZES[i % FREEZES.length];
            try (MoeLayer layer = backend.createLayer(c.config(), c.weights())) {
                check(c, layer, frozen, new SplittableRandom(i), worst);
            } catch (AssertionError e) {
                throw new AssertionError(c + ", frozen " + frozen + ": " + e.getMessage(), e);
            }
        }
        StringBuilder s = new StringBuilder("[moe-opencl tests] noisy top-k backward, " + CASES / 2
                + " cases; worst error (fraction of tolerance):");
        worst.forEach((k, v) -> s.append(String.format(" %s %.3g (%.3g)", k, v[0], v[1])));
        System.out.println(s);
        assertTrue(worst.containsKey("noiseRouter"), "the generator should reach W_noise: " + worst.keySet());
    }

    /** Expert choice: the gates are s = softmax(z) of the taken (token, expert) pairs; the z loss too. */
    @Test
    void expertChoiceBackwardMatchesReference() {
        OpenClBackend backend = OpenClTestSupport.backend();
        Map<String, double[]> worst = new LinkedHashMap<>();
        for (int i = 0; i < CASES / 2; i++) {
            MoeCase c = MoeCase.randomExpertChoice(0xbac2000L + i);
            Set<Freeze> frozen = FREEZES[i % FREEZES.length];
            try (MoeLayer layer = backend.createLayer(c.config(), c.weights())) {
                check(c, layer, frozen, new SplittableRandom(i), worst);
            } catch (AssertionError e) {
                throw new AssertionError(c + ", frozen " + frozen + ": " + e.getMessage(), e);
            }
        }
        StringBuilder s = new StringBuilder("[moe-opencl tests] expert choice backward, " + CASES / 2
                + " cases; worst error (fraction of tolerance):");
        worst.forEach((k, v) -> s.append(String.format(" %s %.3g (%.3g)", k, v[0], v[1])));
        System.out.println(s);
        assertTrue(worst.containsKey("router") && worst.containsKey("wIn"), "the generator should reach the router and experts");
    }

    static Tensor randomDy(SplittableRandom r, int tokens, int d) {
        float[] dy = new float[tokens * d];
        for (int j = 0; j < dy.length; j++) {
            dy[j] = (float) (2 * r.nextDouble() - 1);
        }
        return Tensor.of(dy, tokens, d);
    }

    static void check(MoeCase c, MoeLayer layer, Set<Freeze> frozen, SplittableRandom r, Map<String, double[]> worst) {
        int tokens = c.input().dim(0);
        MoeConfig config = c.config();
        int d = config.modelDim();
        Tensor dy = randomDy(r, tokens, d);
        MoeForward f = layer.forward(c.input(), c.options());
        MoeGradients got = layer.backward(f, dy, frozen);
        ReferenceLayer ref = new ReferenceLayer(config, c.weights());
        ReferenceForward adopted = ref.forwardWithRouting(c.input(), f.routing(), c.options());
        ReferenceGradients want = ref.backward(adopted, dy.toDoubleArray(), frozen);
        double maxZ = maxLogit(config, adopted, tokens);
        double n = GradientTolerance.chain(d, config.hiddenDim(), tokens, config.experts(), config.choicesPerToken());
        compare("input", got.input(), want.input(), n, maxZ, worst);
        compare("router", got.router(), want.router(), n, maxZ, worst);
        compare("routerBias", got.routerBias(), want.routerBias(), n, maxZ, worst);
        compare("noiseRouter", got.noiseRouter(), want.noiseRouter(), n, maxZ, worst);
        compare("wIn", got.wIn(), want.wIn(), n, maxZ, worst);
        compare("wGate", got.wGate(), want.wGate(), n, maxZ, worst);
        compare("wOut", got.wOut(), want.wOut(), n, maxZ, worst);
        compare("bIn", got.bIn(), want.bIn(), n, maxZ, worst);
        compare("bOut", got.bOut(), want.bOut(), n, maxZ, worst);
    }

    /** The reference's max|z| on the adopted routing, raised by noisy top-k's amplifications ({@link GradientTolerance}). */
    static double maxLogit(MoeConfig config, ReferenceForward adopted, int tokens) {
        double maxZ = 0;
        for (double v : adopted.router().keys()) {
            maxZ = Math.max(maxZ, Math.abs(v));
        }
        // the smooth load's amplification, and cv²'s E/k (its inputs' relative error over the E values)
        double noisy = GradientTolerance.noisyAmplification(adopted.router(), tokens, config.experts(), config.topK());
        if (config.router() instanceof io.github.moe4j.api.NoisyTopKRouterConfig) {
            maxZ = (1 + maxZ) * noisy * config.experts() - 1;
        }
        return maxZ;
    }

    static void compare(String name, Tensor got, double[] want, double n, double maxZ, Map<String, double[]> worst) {
        if (want == null) {
            assertNull(got, name + " should be null (absent or frozen)");
            return;
        }
        assertNotNull(got, name + " is missing");
        assertEquals(want.length, got.size(), name + " size");
        double maxWant = 0;
        for (double v : want) {
            maxWant = Math.max(maxWant, Math.abs(v));
        }
        double[] w = worst.computeIfAbsent(name, x -> new double[2]);
        for (int i = 0; i < want.length; i++) {
            double err = Math.abs(got.get(i) - want[i]);
            double tol = GradientTolerance.of(n, maxZ, want[i], maxWant);
            w[0] = Math.max(w[0], err);
            if (tol > 0) {
                w[1] = Math.max(w[1], err / tol);
            }
            if (!(err <= tol)) {
                fail(name + "[" + i + "]: OpenCL " + got.get(i) + ", reference " + want[i] + ", |diff| " + err + " > tolerance " + tol);
            }
        }
    }

    /** Backward twice, and backward with the GC moving arrays between every phase, give bit-identical gradients. */
    @Test
    void backwardIsBitIdenticalOnRepeatAndAcrossGc() {
        for (long seed : new long[] {3L, 91L}) {
            MoeCase c = MoeCase.random(seed);
            try (OpenClLayer layer = (OpenClLayer) OpenClTestSupport.backend().createLayer(c.config(), c.weights())) {
                Tensor dy = randomDy(new SplittableRandom(seed), c.input().dim(0), c.config().modelDim());
                MoeForward f = layer.forward(c.input(), c.options());
                MoeGradients first = layer.backward(f, dy, Set.of());
                MoeGradients second = layer.backward(f, dy, Set.of());
                assertEquals(first, second, c.toString());
                layer.betweenPhases(() -> {
                    for (int i = 0; i < 100; i++) {
                        sink = new float[500 + i];
                    }
                    System.gc();
                });
                MoeGradients stepped = layer.backward(f, dy, Set.of());
                layer.betweenPhases(null);
                assertEquals(first, stepped, c.toString());
            }
        }
    }

    private static Object sink;

    /** Backward of another layer's forward, a wrong dOutput shape and a NaN in dOutput are rejected with what is wrong. */
    @Test
    void badBackwardArgumentsAreRejected() {
        MoeConfig c = MoeConfig.builder().modelDim(4).hiddenDim(3).experts(3).build();
        OpenClBackend backend = OpenClTestSupport.backend();
        try (MoeLayer a = backend.createLayer(c, MoeWeights.random(c, 1)); MoeLayer b = backend.createLayer(c, MoeWeights.random(c, 2))) {
            MoeForward fa = a.forward(Tensor.zeros(2, 4), ForwardOptions.inference());
            IllegalArgumentException other = assertThrows(IllegalArgumentException.class, () -> b.backward(fa, Tensor.zeros(2, 4), Set.of()));
            assertTrue(other.getMessage().contains("Hint"), other.getMessage());
            IllegalArgumentException shape = assertThrows(IllegalArgumentException.class, () -> a.backward(fa, Tensor.zeros(3, 4), Set.of()));
            assertTrue(shape.getMessage().contains("[3, 4]"), shape.getMessage());
            float[] dy = new float[8];
            dy[5] = Float.POSITIVE_INFINITY;
            NonFiniteException inf = assertThrows(NonFiniteException.class, () -> a.backward(fa, Tensor.of(dy, 2, 4), Set.of()));
            assertEquals(5, inf.flatIndex());
        }
    }

    /**
     * A load-balancing gradient that cancels analytically stays exactly zero: with the top-1 counts
     * balanced (f = [1/2, 1/2]) dP is the same for both experts, and with every expert output 0
     * (ReLU of negative pre-activations) nothing else reaches the router, so \( \partial L / \partial z
     * = p \odot (dP - \sum p\,dP) = 0 \). The subtraction form leaves u·|dP| of rounding wherever the
     * float p do not sum to exactly 1; the form \( p_e \sum_{j \ne e} p_j (dP_e - dP_j) \) gives 0.
     */
    @Test
    void cancellingAuxGradientIsExactlyZero() {
        MoeConfig c = MoeConfig.builder().modelDim(1).hiddenDim(1).experts(2)
                .router(io.github.moe4j.api.TokenChoiceRouterConfig.topK(1))
                .losses(io.github.moe4j.api.LossWeights.of().aux(0.01, io.github.moe4j.api.AuxNormalization.TOP1)).build();
        // z = (x, -x): x > 0 goes to expert 0, whose W_in = -1 makes a < 0; x < 0 to expert 1, W_in = +1
        MoeWeights w = MoeWeights.builder().router(Tensor.of(new float[] {1f, -1f}, 1, 2))
                .wIn(Tensor.of(new float[] {-1f, 1f}, 2, 1, 1)).wOut(Tensor.of(new float[] {1f, 1f}, 2, 1, 1)).build();
        float[] x = {1f, 2f, 3.3f, 0.7f, 0.1f, -1f, -2.5f, -3.1f, -0.4f, -0.9f};
        try (MoeLayer layer = OpenClTestSupport.backend().createLayer(c, w)) {
            MoeForward f = layer.forward(Tensor.of(x, x.length, 1), ForwardOptions.inference());
            MoeGradients g = layer.backward(f, randomDy(new SplittableRandom(5), x.length, 1), Set.of());
            assertEquals(Tensor.zeros(x.length, 1), g.input(), "input gradient");
            assertEquals(Tensor.zeros(1, 2), g.router(), "router gradient");
        }
    }

    /** No tokens: an empty input gradient and zero weight gradients (null where frozen). */
    @Test
    void emptyBatchHasZeroGradients() {
        MoeConfig c = MoeConfig.builder().modelDim(4).hiddenDim(3).experts(3).build();
        try (MoeLayer layer = OpenClTestSupport.backend().createLayer(c, MoeWeights.random(c, 1))) {
            MoeForward f = layer.forward(Tensor.zeros(0, 4), ForwardOptions.inference());
            MoeGradients g = layer.backward(f, Tensor.zeros(0, 4), EnumSet.of(Freeze.EXPERTS));
            assertEquals(0, g.input().size());
            assertEquals(Tensor.zeros(4, 3), g.router());
            assertNull(g.wIn());
        }
    }
}

package io.github.moe4j.conformance.golden;

import static io.github.moe4j.conformance.GoldenSetup.transpose;
import static io.github.moe4j.conformance.GoldenSetup.transposeEach;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.AuxNormalization;
import io.github.moe4j.api.LossWeights;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.conformance.GoldenCase;
import io.github.moe4j.conformance.GoldenSetup;
import io.github.moe4j.reference.LoadBalancingLoss;
import io.github.moe4j.reference.ReferenceForward;
import io.github.moe4j.reference.ReferenceLayer;
import io.github.moe4j.reference.RoutingPlan;
import io.github.moe4j.api.Freeze;
import io.github.moe4j.reference.LossTerm;
import io.github.moe4j.reference.ReferenceGradients;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The reference reproduces every golden case: numbers produced by running public MoE
 * implementations (Hugging Face Switch and Mixtral, DeepSpeed, tensor2tensor, flaxformer) on fixed
 * inputs. Each case is mapped to the moe4j configuration that names its conventions, run through
 * the double-precision reference (on {@link GoldenSetup}'s mapping, with the exact weights and
 * input), and every quantity it stores, forward and gradient, is compared at the case's suggested
 * tolerance (routing decisions exactly). The manifests and tensors ship in the suite's resources,
 * written by {@code scripts/refresh-golden.py}.
 */
class ReferenceGoldenCasesTest {

    static List<GoldenCase> cases() {
        return GoldenCase.ids().stream().map(GoldenCase::load).toList();
    }

    /** The case through the reference in double, on the suite's mapping (exact weights and input). */
    private static ReferenceForward run(GoldenSetup s) {
        return new ReferenceLayer(s.config(), s.exactWeights())
                .forward(s.exactInput(), s.exactInput().length / s.config().modelDim(), s.options());
    }

    private static final Set<Freeze> NONE_FROZEN = EnumSet.noneOf(Freeze.class);

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void referenceReproducesEveryStoredQuantity(GoldenCase c) {
        Mismatches m = new Mismatches(c.id());
        switch (c.implementation()) {
            case "hf-switch" -> checkSwitch(c, m);
            case "hf-mixtral" -> checkMixtral(c, m);
            case "deepspeed" -> checkDeepSpeed(c, m);
            case "t2t-noisy-topk" -> checkNoisyTopK(c, m);
            case "flaxformer-tc" -> checkFlaxformer(c, m, false);
            case "flaxformer-ec" -> checkFlaxformer(c, m, true);
            default -> throw new AssertionError(c.id() + ": no mapping for implementation " + c.implementation());
        }
        m.assertNone();
        java.util.Set<String> unchecked = new java.util.TreeSet<>(c.tensorsWithRole("output"));
        unchecked.addAll(c.tensorsWithRole("derived"));
        unchecked.addAll(c.tensorsWithRole("gradient"));
        unchecked.removeAll(m.checked());
        assertTrue(unchecked.isEmpty(), c.id() + ": tensors stored but not checked: " + unchecked);
    }

    // ---------------------------------------------------------------------------------------------
    // Hugging Face Switch Transformers

    private static void checkSwitch(GoldenCase c, Mismatches m) {
        int b = c.hpInt("B");
        int t = c.hpInt("T");
        int d = c.hpInt("d");
        int h = c.hpInt("h");
        int e = c.hpInt("E");
        GoldenSetup setup = GoldenSetup.of(c);
        ReferenceForward f = run(setup);
        RoutingPlan plan = f.plan();
        double rtol = c.rtol();
        double atol = c.atol();
        m.stored(c, "router_logits", f.router().logits());
        m.stored(c, "router_probs_all", f.router().probs());
        double[] top1 = new double[t];
        double[] kept = new double[t];
        double[] oneHotAfter = new double[t * e];
        double[] gateTop1 = new double[t];
        for (int i = 0; i < t; i++) {
            top1[i] = plan.selected()[i];
            kept[i] = plan.isKept(i, 0) ? 1 : 0;
            if (plan.isKept(i, 0)) {
                oneHotAfter[i * e + plan.selected()[i]] = 1;
            }
            gateTop1[i] = plan.gateBeforeCapacity()[i];
        }
        m.storedExactly(c, "top1_expert", top1);
        m.storedExactly(c, "expert_index", oneHotAfter);
        m.storedExactly(c, "kept_mask", kept);
        m.stored(c, "router_prob_top1", gateTop1);
        m.storedExactly(c, "top1_demand_per_expert", toDouble(plan.load()));
        m.stored(c, "out", f.y());
        m.close("z_loss", new int[] {1}, c.tensor("z_loss"), new double[] {f.losses().z()}, rtol, atol);
        m.close("aux_loss", new int[] {1}, c.tensor("aux_loss"), new double[] {f.losses().aux()}, rtol, atol);
        m.close("aux_loss_v4_convention", new int[] {1}, c.tensor("aux_loss_v4_convention"),
                new double[] {auxWithDroppedAsExpertZero(f, b)}, rtol, atol);
        m.close("loss_total", new int[] {1}, c.tensor("loss_total"),
                new double[] {dot(f.y(), c.tensor("dY")) + f.losses().total()}, rtol, atol);

        ReferenceLayer layer = f.layer();
        ReferenceGradients g = layer.backward(f, c.tensor("dY"), NONE_FROZEN);
        m.stored(c, "grad_x", g.input());
        m.stored(c, "grad_router_weight", transpose(g.router(), d, e));
        m.stored(c, "grad_wi", transposeEach(g.wIn(), e, d, h));
        m.stored(c, "grad_wo", transposeEach(g.wOut(), e, h, d));
        if (c.has("grad_router_bias")) {
            m.stored(c, "grad_router_bias", g.routerBias());
        }
        for (LossTerm term : new LossTerm[] {LossTerm.AUX, LossTerm.Z}) {
            String name = term == LossTerm.AUX ? "aux" : "z";
            ReferenceGradients lg = layer.lossGradients(f, term, NONE_FROZEN);
            m.close("grad_" + name + "_x", c.shape("grad_" + name + "_x"), c.tensor("grad_" + name + "_x"), lg.input(), rtol, atol);
            m.close("grad_" + name + "_router_weight", c.shape("grad_" + name + "_router_weight"), c.tensor("grad_" + name + "_router_weight"),
                    transpose(lg.router(), d, e), rtol, atol);
            if (c.has("grad_" + name + "_router_bias")) {
                m.close("grad_" + name + "_router_bias", c.shape("grad_" + name + "_router_bias"), c.tensor("grad_" + name + "_router_bias"),
                        lg.routerBias(), rtol, atol);
            }
        }
    }

    /**
     * Hugging Face Switch before release 5 took the aux loss's expert indices from the
     * capacity-masked one-hot, so a dropped token counted as expert 0. Recomputed here from the
     * reference's routing and probabilities, per group, to show the case's older number follows
     * from the same routing.
     */
    private static double auxWithDroppedAsExpertZero(ReferenceForward f, int groups) {
        RoutingPlan plan = f.plan();
        int t = plan.tokens();
        int e = plan.experts();
        int[] legacy = new int[t];
        for (int i = 0; i < t; i++) {
            legacy[i] = plan.isKept(i, 0) ? plan.selected()[i] : 0;
        }
        int size = t / groups;
        double sum = 0;
        for (int g = 0; g < groups; g++) {
            int[] tokens = java.util.stream.IntStream.range(g * size, (g + 1) * size).toArray();
            double[] fr = LoadBalancingLoss.dispatchFraction(legacy, 1, e, tokens, AuxNormalization.TOP1);
            sum += LoadBalancingLoss.value(fr, LoadBalancingLoss.meanProbability(f.router().probs(), e, tokens));
        }
        return sum / groups;
    }

    // ---------------------------------------------------------------------------------------------
    // Hugging Face Mixtral

    private static void checkMixtral(GoldenCase c, Mismatches m) {
        int t = c.hpInt("T");
        int d = c.hpInt("d");
        int h = c.hpInt("h");
        int e = c.hpInt("E");
        int k = c.hpInt("k");
        GoldenSetup setup = GoldenSetup.of(c);
        ReferenceForward f = run(setup);
        double rtol = c.rtol();
        double atol = c.atol();
        m.stored(c, "router_logits", f.router().logits());
        m.storedExactly(c, "selected_experts", toDouble(f.plan().selected()));
        m.stored(c, "routing_weights", f.plan().gate());
        m.storedExactly(c, "tokens_per_expert", toDouble(f.plan().load()));
        m.stored(c, "out", f.y());
        m.close("aux_loss", new int[] {1}, c.tensor("aux_loss"), new double[] {f.losses().aux()}, rtol, atol);
        m.close("loss_total", new int[] {1}, c.tensor("loss_total"),
                new double[] {dot(f.y(), c.tensor("dY")) + f.losses().total()}, rtol, atol);

        ReferenceGradients g = f.layer().backward(f, c.tensor("dY"), NONE_FROZEN);
        m.stored(c, "grad_x", g.input());
        m.stored(c, "grad_router_weight", transpose(g.router(), d, e));
        m.stored(c, "grad_w1", transposeEach(g.wIn(), e, d, h));
        m.stored(c, "grad_w3", transposeEach(g.wGate(), e, d, h));
        m.stored(c, "grad_w2", transposeEach(g.wOut(), e, h, d));
        ReferenceGradients aux = f.layer().lossGradients(f, LossTerm.AUX, NONE_FROZEN);
        m.stored(c, "grad_aux_x", aux.input());
        m.stored(c, "grad_aux_router_weight", transpose(aux.router(), d, e));
    }

    // ---------------------------------------------------------------------------------------------
    // DeepSpeed

    private static void checkDeepSpeed(GoldenCase c, Mismatches m) {
        int t = c.hpInt("T");
        int d = c.hpInt("d");
        int h = c.hpInt("h");
        int e = c.hpInt("E");
        int k = c.hpInt("k");
        GoldenSetup setup = GoldenSetup.of(c);
        ReferenceForward f = run(setup);
        RoutingPlan plan = f.plan();
        int cap = plan.capacity();
        double rtol = c.rtol();
        double atol = c.atol();
        m.stored(c, "logits", f.router().logits());
        m.exact("capacity", new int[] {1}, c.tensor("capacity"), new double[] {cap});
        m.close("l_aux", new int[] {1}, c.tensor("l_aux"), new double[] {f.losses().aux()}, rtol, atol);
        m.storedExactly(c, "exp_counts", toDouble(plan.load()));
        double[] combine = new double[t * e * cap];
        double[] dispatch = new double[t * e * cap];
        double[] routeExpert = new double[k * t];
        double[] routeSlot = new double[k * t];
        double[] routeGate = new double[k * t];
        double[] chosen = new double[t * e];
        double[] keptMask = new double[t * e];
        double[] dropped = new double[t * e];
        double[] fullyDropped = new double[t];
        double[] slotIndex = new double[t * e];
        double[] gateValues = new double[t * e];
        java.util.Arrays.fill(slotIndex, -1);
        for (int i = 0; i < t; i++) {
            boolean anyKept = false;
            for (int j = 0; j < k; j++) {
                int ex = plan.selected()[i * k + j];
                int s = plan.slot()[i * k + j];
                chosen[i * e + ex] = 1;
                routeExpert[j * t + i] = s >= 0 ? ex : -1;
                routeSlot[j * t + i] = Math.max(s, 0);
                routeGate[j * t + i] = plan.gate()[i * k + j];
                if (s >= 0) {
                    anyKept = true;
                    keptMask[i * e + ex] = 1;
                    slotIndex[i * e + ex] = s;
                    gateValues[i * e + ex] = plan.gate()[i * k + j];
                    combine[(i * e + ex) * cap + s] = plan.gate()[i * k + j];
                    dispatch[(i * e + ex) * cap + s] = plan.gate()[i * k + j] != 0 ? 1 : 0;
                } else {
                    dropped[i * e + ex] = 1;
                }
            }
            fullyDropped[i] = anyKept ? 0 : 1;
        }
        m.stored(c, "combine_weights", combine);
        m.storedExactly(c, "dispatch_mask", dispatch);
        m.storedExactly(c, "route_expert", routeExpert);
        m.storedExactly(c, "route_slot", routeSlot);
        m.stored(c, "route_gate", routeGate);
        m.storedExactly(c, "chosen_mask", chosen);
        m.storedExactly(c, "kept_mask", keptMask);
        m.storedExactly(c, "dropped_assignment_mask", dropped);
        m.storedExactly(c, "fully_dropped_token_mask", fullyDropped);
        m.storedExactly(c, "slot_index", slotIndex);
        m.stored(c, "gate_values", gateValues);
        m.stored(c, "out", f.y());
        m.close("loss_total", new int[] {1}, c.tensor("loss_total"),
                new double[] {dot(f.y(), c.tensor("dY")) + f.losses().total()}, rtol, atol);

        ReferenceGradients g = f.layer().backward(f, c.tensor("dY"), NONE_FROZEN);
        m.stored(c, "grad_x", g.input());
        m.stored(c, "grad_wg", transpose(g.router(), d, e));
        m.stored(c, "grad_expert_w1", transposeEach(g.wIn(), e, d, h));
        m.stored(c, "grad_expert_b1", g.bIn());
        m.stored(c, "grad_expert_w2", transposeEach(g.wOut(), e, h, d));
        m.stored(c, "grad_expert_b2", g.bOut());
        ReferenceGradients aux = f.layer().lossGradients(f, LossTerm.AUX, NONE_FROZEN);
        m.stored(c, "grad_aux_x", aux.input());
        m.stored(c, "grad_aux_wg", transpose(aux.router(), d, e));
    }

    // ---------------------------------------------------------------------------------------------
    // tensor2tensor noisy top-k (router only)

    private static void checkNoisyTopK(GoldenCase c, Mismatches m) {
        int t = c.hpInt("T");
        int d = c.hpInt("d");
        int e = c.hpInt("E");
        int k = c.hpInt("k");
        boolean noisy = c.hpBool("noisy_gating");
        boolean train = c.hpBool("train");
        double coef = c.hpDouble("loss_coef");
        GoldenSetup setup = GoldenSetup.of(c);
        ReferenceForward f = run(setup);
        double rtol = c.rtol();
        double atol = c.atol();
        double[] gates = new double[t * e];
        for (int i = 0; i < t; i++) {
            for (int j = 0; j < k; j++) {
                gates[i * e + f.plan().selected()[i * k + j]] = f.plan().gate()[i * k + j];
            }
        }
        m.stored(c, "gates", gates);
        m.stored(c, "importance", f.importance());
        m.stored(c, "load", f.loadVector());
        m.close("cv_squared_importance", new int[] {1}, c.tensor("cv_squared_importance"), new double[] {f.losses().importance()}, rtol, atol);
        m.close("cv_squared_load", new int[] {1}, c.tensor("cv_squared_load"), new double[] {f.losses().load()}, rtol, atol);
        m.close("aux_loss", new int[] {1}, c.tensor("aux_loss"), new double[] {f.losses().total()}, rtol, atol);
        m.close("loss_total", new int[] {1}, c.tensor("loss_total"),
                new double[] {dot(gates, c.tensor("dG")) + f.losses().total()}, rtol, atol);
        m.exact("experts per token", new int[] {t}, ones(t, k), keptPerToken(f.plan()));

        // loss_total = sum(gates * dG) + aux: the upstream gradient of each (token, choice) gate is dG at its expert
        double[] dGate = new double[t * k];
        for (int i = 0; i < t; i++) {
            for (int j = 0; j < k; j++) {
                dGate[i * k + j] = c.tensor("dG")[i * e + f.plan().selected()[i * k + j]];
            }
        }
        ReferenceGradients g = f.layer().backwardFromGates(f, dGate, NONE_FROZEN);
        m.stored(c, "grad_x", g.input());
        m.stored(c, "grad_w_gate", g.router());
        if (c.has("grad_w_noise")) {
            m.stored(c, "grad_w_noise", g.noiseRouter());
        }
        // aux_loss = loss_coef * (cv²(importance) + cv²(load)), each term's gradient taken alone
        ReferenceGradients imp = f.layer().lossGradients(f, LossTerm.IMPORTANCE, NONE_FROZEN);
        ReferenceGradients load = f.layer().lossGradients(f, LossTerm.LOAD, NONE_FROZEN);
        m.stored(c, "grad_aux_x", weightedSum(coef, imp.input(), load.input()));
        m.stored(c, "grad_aux_w_gate", weightedSum(coef, imp.router(), load.router()));
        if (c.has("grad_aux_w_noise")) {
            m.close("grad_aux_w_noise", c.shape("grad_aux_w_noise"), c.tensor("grad_aux_w_noise"),
                    weightedSum(coef, imp.noiseRouter(), load.noiseRouter()), rtol, atol);
        }
    }

    private static double[] weightedSum(double coef, double[] a, double[] b) {
        double[] s = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            s[i] = coef * (a[i] + b[i]);
        }
        return s;
    }

    // ---------------------------------------------------------------------------------------------
    // flaxformer token choice and expert choice (router only)

    private static void checkFlaxformer(GoldenCase c, Mismatches m, boolean expertChoice) {
        int groups = c.hpInt("G");
        int perGroup = c.hpInt("T");
        int t = groups * perGroup;
        int d = c.hpInt("d");
        int e = c.hpInt("E");
        int cap = c.hpInt("expert_capacity");
        GoldenSetup setup = GoldenSetup.of(c);
        ReferenceForward f = run(setup);
        RoutingPlan plan = f.plan();
        int mChoices = plan.choices();
        double rtol = c.rtol();
        double atol = c.atol();
        m.exact("capacity", new int[] {1}, new double[] {cap}, new double[] {plan.capacity()});
        m.stored(c, "router_logits", f.router().logits());
        m.stored(c, "router_probs", f.router().probs());
        double[] dispatch = new double[t * e * cap];
        double[] combine = new double[t * e * cap];
        double[] chosen = new double[t * e];
        double[] kept = new double[t * e];
        double[] expertsPerToken = new double[t];
        for (int i = 0; i < t; i++) {
            for (int j = 0; j < mChoices; j++) {
                int ex = plan.selected()[i * mChoices + j];
                if (ex < 0) {
                    continue;
                }
                chosen[i * e + ex] = 1;
                int s = plan.slot()[i * mChoices + j];
                if (s >= 0) {
                    kept[i * e + ex] = 1;
                    expertsPerToken[i]++;
                    dispatch[(i * e + ex) * cap + s] = 1;
                    combine[(i * e + ex) * cap + s] = plan.gate()[i * mChoices + j];
                }
            }
        }
        m.storedExactly(c, "dispatch_mask", dispatch);
        m.stored(c, "combine_array", combine);
        if (c.has("chosen_mask")) {
            m.storedExactly(c, "chosen_mask", chosen);
        }
        if (c.has("kept_mask")) {
            m.storedExactly(c, "kept_mask", kept);
        }
        if (c.has("experts_per_token")) {
            m.storedExactly(c, "experts_per_token", expertsPerToken);
        }
        // flaxformer reduces both losses in float32 whatever the input dtype: _router_z_loss ends in
        // jnp.sum(z_loss, dtype=jnp.float32) and _load_balancing_loss takes jnp.mean(..., dtype=jnp.float32).
        // The stored scalars therefore carry float32 summation error, bounded by gamma_n = n * 2^-24
        // relative for n summed terms (Higham, Accuracy and Stability of Numerical Algorithms, eq. 4.4);
        // n = G * T * E covers every term either loss sums.
        double float32Sum = (double) t * e * Math.scalb(1.0, -24);
        m.close("z_loss", new int[] {1}, c.tensor("z_loss"), new double[] {f.losses().z()}, float32Sum, atol);
        m.close("aux_loss", new int[] {1}, c.tensor("aux_loss"), new double[] {f.losses().aux()}, float32Sum, atol);
        // The float64 part of the total, sum(combine * dC), is checked at the case's own tolerance.
        // JAX's weak typing makes coef * loss a float32 product (the loss is float32); the product of
        // two floats is exact in double, so one rounding to float reproduces it bit for bit.
        double zTerm = float32Product(c.hpDouble("z_coef"), c.tensor("z_loss")[0]);
        double auxTerm = expertChoice ? 0 : float32Product(c.hpDouble("aux_coef"), c.tensor("aux_loss")[0]);
        double float64Part = c.tensor("loss_total")[0] - zTerm - auxTerm;
        m.close("loss_total", new int[] {1}, new double[] {float64Part}, new double[] {dot(combine, c.tensor("dC"))}, rtol, atol);

        // loss_total = sum(combine * dC) + losses: each kept (token, choice) gate's upstream gradient is dC at (t, e, slot)
        double[] dGate = new double[t * mChoices];
        for (int i = 0; i < t; i++) {
            for (int j = 0; j < mChoices; j++) {
                int ex = plan.selected()[i * mChoices + j];
                int s = plan.slot()[i * mChoices + j];
                if (ex >= 0 && s >= 0) {
                    dGate[i * mChoices + j] = c.tensor("dC")[(i * e + ex) * cap + s];
                }
            }
        }
        // JAX's weak typing makes each Python-float coefficient float32 where it multiplies a float32
        // loss (0.01 becomes 0.0099999998), and the gradients flow back from that coefficient. Without
        // the aux term the rest is float64 and is checked at the case's tolerance.
        MoeConfig withoutAux = setup.config().toBuilder().losses(LossWeights.of().aux(0, setup.config().losses().auxNormalization())
                .z((float) c.hpDouble("z_coef"))).build();
        ReferenceLayer layer = new ReferenceLayer(withoutAux, setup.exactWeights());
        ReferenceForward f2 = layer.forward(setup.exactInput(), t, setup.options());
        ReferenceGradients g = layer.backwardFromGates(f2, dGate, NONE_FROZEN);
        if (expertChoice) {
            m.stored(c, "grad_x", g.input());
            m.stored(c, "grad_router_kernel", g.router());
            m.stored(c, "grad_router_bias", g.routerBias());
            return;
        }
        // _load_balancing_loss also runs backward in float32 (jnp.mean(..., dtype=jnp.float32)): its
        // per-(group, expert) cotangent coef * E^2 * f / (G E T) is rounded to float32 before it
        // reaches the float64 softmax. What the golden gradient has beyond our float64 rest must be
        // our aux gradient to float32 precision: 8 * 2^-24 of its largest entry, plus the case's tolerance.
        ReferenceGradients aux = f.layer().lossGradients(f, LossTerm.AUX, NONE_FROZEN);
        double alpha = (float) c.hpDouble("aux_coef");
        checkRemainder(m, c, "grad_x", g.input(), aux.input(), alpha);
        checkRemainder(m, c, "grad_router_kernel", g.router(), aux.router(), alpha);
        checkRemainder(m, c, "grad_router_bias", g.routerBias(), aux.routerBias(), alpha);
    }

    /** Checks {@code want - rest == alpha * auxGradient} to float32 precision of the aux part. */
    private static void checkRemainder(Mismatches m, GoldenCase c, String name, double[] rest, double[] auxGradient, double alpha) {
        double[] want = c.tensor(name);
        double[] remainder = new double[want.length];
        double[] auxPart = new double[want.length];
        double maxAux = 0;
        double maxWant = 0;
        for (int i = 0; i < want.length; i++) {
            remainder[i] = want[i] - rest[i];
            auxPart[i] = alpha * auxGradient[i];
            maxAux = Math.max(maxAux, Math.abs(auxPart[i]));
            maxWant = Math.max(maxWant, Math.abs(want[i]));
        }
        double allowed = c.atol() + c.rtol() * maxWant + 8 * Math.scalb(1.0, -24) * maxAux;
        m.close(name, c.shape(name), remainder, auxPart, 0, allowed);
    }

    // ---------------------------------------------------------------------------------------------
    // helpers (GoldenSetup.transpose and transposeEach map torch's nn.Linear [out, in] to moe4j's [in, out])

    /** The float32 product of two values as float32 arithmetic computes it. */
    private static double float32Product(double a, double b) {
        return (float) ((double) (float) a * (double) (float) b);
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    private static double[] toDouble(int[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i];
        }
        return d;
    }

    private static double[] ones(int n, double v) {
        double[] a = new double[n];
        java.util.Arrays.fill(a, v);
        return a;
    }

    private static double[] keptPerToken(RoutingPlan plan) {
        double[] n = new double[plan.tokens()];
        for (int i = 0; i < plan.tokens(); i++) {
            for (int j = 0; j < plan.choices(); j++) {
                n[i] += plan.isKept(i, j) ? 1 : 0;
            }
        }
        return n;
    }

}

package io.github.moe4j.reference;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.ExpertChoiceRouterConfig;
import io.github.moe4j.api.GateNormalization;
import io.github.moe4j.api.Priority;
import io.github.moe4j.api.RenormTiming;
import io.github.moe4j.api.Routing;
import io.github.moe4j.api.SecondExpertPolicy;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * How far a forward is from a discontinuity: the smallest gap between two continuous values
 * whose comparison decided something discrete (a selection, a rank, a threshold, a capacity
 * decision, a ReLU branch). A finite difference with step h is exact-branch only when every such
 * value moves by less than its gap; the keys move by at most h·|∂key/∂parameter| per step.
 */
final class SelectionMargin {
    private SelectionMargin() {}

    /** The smallest decision gap of the forward {@code f}; +∞ if nothing was decided by a comparison. */
    static double of(ReferenceForward f) {
        RouterOutput r = f.router();
        RoutingPlan plan = f.plan();
        var config = f.config();
        int tokens = plan.tokens();
        int e = config.experts();
        int m = plan.choices();
        double margin = Double.POSITIVE_INFINITY;
        boolean expertChoice = config.router() instanceof ExpertChoiceRouterConfig;

        if (!expertChoice) {
            // every comparison among a token's keys: selection (k-th vs k+1-th), rank order (TOP1 f,
            // rank priorities, the random policy's rank 1), t2t's is_in and its thresholds
            for (int t = 0; t < tokens; t++) {
                if (plan.selected()[t * m] < 0) {
                    continue;
                }
                double[] keys = Arrays.copyOfRange(r.keys(), t * e, (t + 1) * e);
                Arrays.sort(keys);
                for (int i = 1; i < e; i++) {
                    margin = Math.min(margin, keys[i] - keys[i - 1]);
                }
            }
        }
        if (config.router() instanceof TokenChoiceRouterConfig tc && tc.secondExpertPolicy().kind() == SecondExpertPolicy.Kind.RANDOM
                && r.secondExpertUniform() != null) {
            // keep rank 1 iff u < g1 / θ
            for (int t = 0; t < tokens; t++) {
                if (plan.selected()[t * m] >= 0) {
                    double g1 = plan.gateBeforeCapacity()[t * m + 1];
                    margin = Math.min(margin, Math.abs(r.secondExpertUniform()[t] - g1 / tc.secondExpertPolicy().threshold()));
                }
            }
        }
        int groupSize = tokens / plan.groups();
        if (plan.capacity() != Routing.UNLIMITED && groupSize > 0) {
            for (int g = 0; g < plan.groups(); g++) {
                if (expertChoice) {
                    // expert e takes the C largest s[t, e]: the C-th against the (C+1)-th
                    for (int ex = 0; ex < e; ex++) {
                        List<Double> s = new ArrayList<>();
                        for (int t = g * groupSize; t < (g + 1) * groupSize; t++) {
                            if (eligible(f, t)) {
                                s.add(r.probs()[t * e + ex]);
                            }
                        }
                        s.sort((a, b) -> Double.compare(b, a));
                        if (s.size() > plan.capacity() && plan.capacity() > 0) {
                            margin = Math.min(margin, s.get(plan.capacity() - 1) - s.get(plan.capacity()));
                        }
                    }
                } else if (config.priority() == Priority.GATE_VALUE || config.priority() == Priority.BATCH_PRIORITIZED) {
                    margin = Math.min(margin, capacityOrderMargin(f, g, groupSize));
                }
            }
        }
        if (config.activation() == Activation.RELU) {
            for (ExpertNetwork.Activations[] rows : f.experts().activations()) {
                for (ExpertNetwork.Activations a : rows) {
                    for (double v : a.preActivation()) {
                        margin = Math.min(margin, Math.abs(v));
                    }
                }
            }
        }
        return margin;
    }

    private static boolean eligible(ReferenceForward f, int t) {
        return f.router().realTokens()[t] || f.config().padding() == io.github.moe4j.api.PaddingPolicy.ROUTED;
    }

    /**
     * For each expert asked for more than C times in group g, the smallest gap between two of its
     * assignments' priority values (gate for GATE_VALUE, top-1 probability at equal rank for
     * BATCH_PRIORITIZED). A value that is the same constant for every assignment (k = 1 renormalised
     * gates, all exactly 1) never reorders and is skipped.
     */
    private static double capacityOrderMargin(ReferenceForward f, int g, int groupSize) {
        RouterOutput r = f.router();
        RoutingPlan plan = f.plan();
        var config = f.config();
        int e = config.experts();
        int m = plan.choices();
        boolean afterRenorm = config.router() instanceof TokenChoiceRouterConfig tc && tc.gates() == GateNormalization.RENORMALIZE
                && tc.renormTiming() == RenormTiming.AFTER_CAPACITY;
        boolean constantGate = m == 1 && !afterRenorm && !(config.router() instanceof TokenChoiceRouterConfig tc2
                && tc2.gates() == GateNormalization.NONE);
        double margin = Double.POSITIVE_INFINITY;
        for (int ex = 0; ex < e; ex++) {
            List<int[]> asks = new ArrayList<>();
            for (int t = g * groupSize; t < (g + 1) * groupSize; t++) {
                for (int j = 0; j < m; j++) {
                    if (plan.selected()[t * m + j] == ex) {
                        asks.add(new int[] {t, j});
                    }
                }
            }
            if (asks.size() <= plan.capacity()) {
                continue;
            }
            for (int a = 0; a < asks.size(); a++) {
                for (int b = a + 1; b < asks.size(); b++) {
                    int ta = asks.get(a)[0];
                    int ja = asks.get(a)[1];
                    int tb = asks.get(b)[0];
                    int jb = asks.get(b)[1];
                    if (config.priority() == Priority.GATE_VALUE) {
                        if (constantGate) {
                            continue;
                        }
                        double va = afterRenorm ? r.probs()[ta * e + ex] : plan.gateBeforeCapacity()[ta * m + ja];
                        double vb = afterRenorm ? r.probs()[tb * e + ex] : plan.gateBeforeCapacity()[tb * m + jb];
                        margin = Math.min(margin, Math.abs(va - vb));
                    } else if (ja == jb) {
                        double va = r.probs()[ta * e + plan.selected()[ta * m]];
                        double vb = r.probs()[tb * e + plan.selected()[tb * m]];
                        margin = Math.min(margin, Math.abs(va - vb));
                    }
                }
            }
        }
        return margin;
    }
}

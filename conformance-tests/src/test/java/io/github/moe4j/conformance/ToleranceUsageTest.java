package io.github.moe4j.conformance;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeLosses;
import io.github.moe4j.conformance.float32.Float32BackendProvider;
import io.github.moe4j.reference.ReferenceForward;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * How much of each forward tolerance a float32 implementation uses: runs the float32 stand-in
 * backend on generated cases and records, per quantity, the largest |got - want| / allowed. The
 * suite's bounds must hold (usage at most 1) and must not be vacuous: a bound that a float32
 * implementation never comes within a factor 1000 of (10000 for the cv² losses, whose bound
 * carries E times the gate bound) would let real bugs of that size through. Measured over three
 * runs: gates 0.6-0.7%, output 1-7%, aux 0.3-0.4%, z 1-2%, importance and load 0.03-0.06%.
 */
class ToleranceUsageTest {
    private static final int CASES = 1500;

    @Test
    void float32ForwardUsesAMeasurablePartOfEachBoundAndNeverExceedsIt() {
        Map<String, Double> usage = new LinkedHashMap<>();
        for (String q : new String[] {"gates", "output", "aux", "z", "importance", "load"}) {
            usage.put(q, 0.0);
        }
        Iterator<MoeCase> cases = MoeCases.all().sampleStream().iterator();
        try (var backend = MoeBackendContract.forProvider(Float32BackendProvider.NAME)) {
            for (int n = 0; n < CASES; n++) {
                MoeCase c = cases.next();
                Oracle o = Oracle.of(c);
                Tolerances.Sizes s = o.sizes();
                try (MoeLayer layer = backend.createLayer(c.config(), c.weights()); MoeForward f = layer.forward(c.input(), c.options())) {
                    ReferenceForward on = o.on(f.routing());
                    float[] gates = f.routing().gates();
                    double[] want = on.plan().gate();
                    for (int i = 0; i < gates.length; i++) {
                        record(usage, "gates", want[i], gates[i], Tolerances.FP32.gates(s), 1);
                    }
                    double scale = Compare.maxAbs(on.y());
                    float[] y = f.output().toArray();
                    for (int i = 0; i < y.length; i++) {
                        record(usage, "output", on.y()[i], y[i], Tolerances.FP32.output(s), scale);
                    }
                    MoeLosses w = on.losses();
                    MoeLosses g = f.losses();
                    record(usage, "aux", w.aux(), g.aux(), Tolerances.FP32.aux(s), 1);
                    record(usage, "z", w.z(), g.z(), Tolerances.FP32.z(s), 1);
                    record(usage, "importance", w.importance(), g.importance(), Tolerances.FP32.importance(s), 1);
                    record(usage, "load", w.load(), g.load(), Tolerances.FP32.load(s), 1);
                }
            }
        }
        System.out.println("[moe4j conformance] largest share of each float32 bound used by the float32 stand-in over " + CASES
                + " generated cases: " + usage);
        for (Map.Entry<String, Double> u : usage.entrySet()) {
            assertTrue(u.getValue() <= 1, u.getKey() + " exceeds its bound: " + u.getValue());
        }
        for (String q : usage.keySet()) {
            double floor = q.equals("importance") || q.equals("load") ? 1e-4 : 1e-3;
            assertTrue(usage.get(q) > floor, q + ": the float32 stand-in never used more than " + floor + " of the bound (" + usage.get(q)
                    + "); the bound is vacuous");
        }
    }

    private static void record(Map<String, Double> usage, String q, double want, double got, Tolerance tol, double scale) {
        double allowed = tol.allowed(want, scale);
        double diff = Math.abs(got - want);
        double ratio = allowed == 0 ? (diff == 0 ? 0 : Double.POSITIVE_INFINITY) : diff / allowed;
        usage.merge(q, ratio, Math::max);
    }
}

package io.github.moe4j.conformance.golden;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Collects every disagreement between a golden case and the reference, so that one run reports all
 * of them: the tensor, the index (and its coordinates), both values and the tolerance.
 */
final class Mismatches {
    private final String caseId;
    private final List<String> failures = new ArrayList<>();
    private final java.util.Set<String> checked = new java.util.TreeSet<>();
    private int checkedTensors;
    private int checkedValues;

    Mismatches(String caseId) {
        this.caseId = caseId;
    }

    /** {@code |got - want| <= atol + rtol |want|} elementwise (numpy's allclose). */
    void close(String name, int[] shape, double[] want, double[] got, double rtol, double atol) {
        checkedTensors++;
        checked.add(name);
        if (want.length != got.length) {
            failures.add(name + ": length " + got.length + ", expected " + want.length);
            return;
        }
        int bad = 0;
        double worst = 0;
        int worstAt = -1;
        for (int i = 0; i < want.length; i++) {
            checkedValues++;
            double err = Math.abs(got[i] - want[i]);
            double allowed = atol + rtol * Math.abs(want[i]);
            if (!(err <= allowed)) {
                if (bad++ < 5) {
                    failures.add(String.format("%s%s: got %.17g, want %.17g (|err| %.3g > %.3g = atol %.1g + rtol %.1g |want|)", name,
                            Arrays.toString(io.github.moe4j.api.NonFiniteException.coordinates(i, shape)), got[i], want[i], err, allowed, atol, rtol));
                }
                if (err > worst) {
                    worst = err;
                    worstAt = i;
                }
            }
        }
        if (bad > 5) {
            failures.add(name + ": " + bad + " mismatches in all, worst at flat index " + worstAt + " (|err| " + worst + ")");
        }
    }

    /** A stored tensor of the case against {@code got}, at the case's own tolerance. */
    void stored(io.github.moe4j.conformance.GoldenCase c, String name, double[] got) {
        close(name, c.shape(name), c.tensor(name), got, c.rtol(), c.atol());
    }

    /** A stored routing tensor of the case against {@code got}, exactly. */
    void storedExactly(io.github.moe4j.conformance.GoldenCase c, String name, double[] got) {
        exact(name, c.shape(name), c.tensor(name), got);
    }

    /** Exact equality, for routing decisions stored as float64. */
    void exact(String name, int[] shape, double[] want, double[] got) {
        checkedTensors++;
        checked.add(name);
        if (want.length != got.length) {
            failures.add(name + ": length " + got.length + ", expected " + want.length);
            return;
        }
        int bad = 0;
        for (int i = 0; i < want.length; i++) {
            checkedValues++;
            if (want[i] != got[i] && bad++ < 8) {
                failures.add(name + Arrays.toString(io.github.moe4j.api.NonFiniteException.coordinates(i, shape)) + ": got " + got[i] + ", want " + want[i]);
            }
        }
        if (bad > 8) {
            failures.add(name + ": " + bad + " routing mismatches in all");
        }
    }

    /** The names of the tensors compared so far. */
    java.util.Set<String> checked() {
        return checked;
    }

    int checkedTensors() {
        return checkedTensors;
    }

    int checkedValues() {
        return checkedValues;
    }

    /** Fails with every mismatch if there was one. */
    void assertNone() {
        if (!failures.isEmpty()) {
            throw new AssertionError(caseId + ": " + failures.size() + " mismatch(es) in " + checkedTensors + " tensors:\n  "
                    + String.join("\n  ", failures));
        }
    }
}

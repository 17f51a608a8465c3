package io.github.moe4j.conformance;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Tensor;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.opentest4j.AssertionFailedError;

/** The comparator itself (STYLE §20): what passes, what fails, and what the report says. */
class CompareTest {
    private static final Tolerance TOL = new Tolerance(1e-3, 1e-2, "test bound");

    @Test
    void identicalValuesPass() {
        double[] v = {1, -2, 3.5, 0};
        assertTrue(Compare.floatsReport("v", v, v.clone(), new int[] {4}, TOL).passed());
    }

    @Test
    void differenceExactlyAtTheBoundPassesAndJustBeyondFails() {
        double want = 2;
        double scale = 4; // max |want| below
        double allowed = 1e-3 * want + 1e-2 * scale;
        double[] w = {want, -4};
        assertTrue(Compare.floatsReport("v", w, new double[] {want + allowed, -4}, new int[] {2}, TOL).passed());
        assertFalse(Compare.floatsReport("v", w, new double[] {want + allowed * 1.0001, -4}, new int[] {2}, TOL).passed());
    }

    @Test
    void absolutePartScalesWithTheLargestWantOfTheTensor() {
        double[] w = {1000, 0};
        // element 1 wants 0: allowed = 1e-2 * 1000 = 10
        assertTrue(Compare.floatsReport("v", w, new double[] {1000, 9.9}, new int[] {2}, TOL).passed());
        assertFalse(Compare.floatsReport("v", w, new double[] {1000, 10.1}, new int[] {2}, TOL).passed());
    }

    @Test
    void anAllZeroWantIsComparedExactly() {
        assertFalse(Compare.floatsReport("v", new double[] {0, 0}, new double[] {0, 1e-30}, new int[] {2}, TOL).passed());
    }

    @Test
    void aSingleBadElementAmongManyGoodOnesFails() {
        // a norm-based comparison (jcuda's equalByNorm) would pass this
        double[] w = new double[10_000];
        Arrays.fill(w, 1);
        double[] g = w.clone();
        g[7777] = 1.5;
        Compare.Report r = Compare.floatsReport("v", w, g, new int[] {100, 100}, TOL);
        assertEquals(1, r.mismatches().size());
        assertArrayEquals(new int[] {77, 77}, r.worst().coordinates());
    }

    @ParameterizedTest
    @ValueSource(doubles = {Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY})
    void nonFiniteGotFailsAgainstAFiniteWant(double bad) {
        assertFalse(Compare.floatsReport("v", new double[] {1}, new double[] {bad}, new int[] {1}, TOL).passed());
    }

    @ParameterizedTest
    @ValueSource(doubles = {Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY})
    void nonFiniteWantPassesOnlyTheSameValue(double bad) {
        assertTrue(Compare.floatsReport("v", new double[] {bad}, new double[] {bad}, new int[] {1}, TOL).passed());
        assertFalse(Compare.floatsReport("v", new double[] {bad}, new double[] {0}, new int[] {1}, TOL).passed());
    }

    @Test
    void reportListsTheFirstTenMismatchesTheCountAndTheWorst() {
        double[] w = new double[30];
        double[] g = new double[30];
        for (int i = 0; i < 30; i++) {
            w[i] = 1;
            g[i] = i % 2 == 0 ? 1 + 0.1 * (i + 1) : 1;
        }
        Compare.Report r = Compare.floatsReport("output [T, d]", w, g, new int[] {6, 5}, TOL);
        String msg = r.message("CASE-DESCRIPTION");
        assertEquals(15, r.mismatches().size());
        assertTrue(msg.startsWith("output [T, d]: 15 of 30 elements differ"), msg);
        assertTrue(msg.contains("[0] [0, 0] want 1 got 1.10000000"), msg);
        assertTrue(msg.contains("... 5 more"), msg);
        assertTrue(msg.contains("worst: [28] [5, 3] want 1 got 3.90000000"), msg);
        assertTrue(msg.contains("test bound") && msg.contains("scale 1"), "the tolerance and its reason: " + msg);
        assertTrue(msg.endsWith("case: CASE-DESCRIPTION"), msg);
        assertEquals(10, msg.lines().filter(l -> l.startsWith("  [")).count(), msg);
    }

    @Test
    void worstIsTheLargestDifferenceRelativeToWhatWasAllowed() {
        double[] w = {100, 1};
        double[] g = {102, 1.2}; // allowed: 0.1 + 1 = 1.1 and 0.001 + 1 = 1.001; ratios 1.8 and 0.2 -> only the first fails
        Compare.Report r = Compare.floatsReport("v", w, g, new int[] {2}, TOL);
        assertEquals(0, r.worst().index());
        assertEquals(1, r.mismatches().size());
    }

    @Test
    void assertPassedThrowsAnAssertionErrorWithTheMessage() {
        AssertionFailedError e = assertThrows(AssertionFailedError.class,
                () -> Compare.floats("x", new double[] {1}, Tensor.of(new float[] {2}, 1), TOL, "ctx"));
        assertTrue(e.getMessage().contains("want 1 got 2") && e.getMessage().contains("case: ctx"), e.getMessage());
    }

    @Test
    void exactComparisonReportsEveryDifferentIndex() {
        Compare.Report r = Compare.exactReport("slots", new int[] {0, 1, -1, 2}, new int[] {0, 2, -1, 1}, new int[] {2, 2});
        assertEquals(2, r.mismatches().size());
        assertArrayEquals(new int[] {0, 1}, r.mismatches().get(0).coordinates());
    }

    @Test
    void bitsDistinguishNegativeZeroAndAnyUlp() {
        assertFalse(Compare.bitsReport("y", new float[] {0f}, new float[] {-0f}, new int[] {1}).passed());
        assertFalse(Compare.bitsReport("y", new float[] {1f}, new float[] {Math.nextUp(1f)}, new int[] {1}).passed());
        assertTrue(Compare.bitsReport("y", new float[] {Float.NaN, 3f}, new float[] {Float.NaN, 3f}, new int[] {2}).passed());
    }

    @Test
    void bitsRejectADifferentShape() {
        assertThrows(AssertionFailedError.class, () -> Compare.bits("y", Tensor.zeros(2, 3), Tensor.zeros(3, 2), "ctx"));
    }

    @Test
    void differentLengthsFailInsteadOfComparingAPrefix() {
        assertThrows(AssertionFailedError.class, () -> Compare.floatsReport("v", new double[] {1, 2}, new double[] {1}, new int[] {2}, TOL));
    }

    @Test
    void toleranceRejectsNegativeOrNonFiniteParts() {
        assertThrows(IllegalArgumentException.class, () -> new Tolerance(-1, 0, "r"));
        assertThrows(IllegalArgumentException.class, () -> new Tolerance(0, Double.NaN, "r"));
    }
}

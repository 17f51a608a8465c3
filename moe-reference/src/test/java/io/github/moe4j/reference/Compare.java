package io.github.moe4j.reference;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.Arrays;

/**
 * Comparisons for the property tests (STYLE §20): integers and "bitwise" doubles exactly, other
 * doubles within a stated {@link Tolerance}. A failure names the quantity, the flat index, both
 * values, the bound and the case.
 */
final class Compare {
    private Compare() {}

    /**
     * \( |got - want| \le abs + rel \cdot \max_i |want_i| \): a relative bound on the scale of the
     * whole quantity, plus an absolute floor.
     *
     * @param abs    absolute floor
     * @param rel    relative to the largest expected magnitude of the quantity
     * @param reason why the bound is what it is
     */
    record Tolerance(double abs, double rel, String reason) {
        double bound(double scale) {
            return abs + rel * scale;
        }
    }

    /**
     * The same double formula computed in a different order or with another correctly rounded
     * library function. Every value here is a short sum (at most ~50 terms: d, h, E ≤ 6) of
     * products of O(1) numbers, or an exp/log of logits up to ±100, so re-ordering moves it by a few
     * hundred ulps of the largest term at most (≤ 1e-13 relative). 1e-12 keeps a margin and is still
     * ten orders of magnitude below the effect of any wrong or missing term.
     */
    static final Tolerance REORDERED = new Tolerance(1e-15, 1e-12, "double rounding of a re-ordered formula");

    /**
     * Two normal-CDF implementations (Commons Numbers erf and Commons Statistics): each is within a
     * few ulps of 1, i.e. ~1e-16 absolute even deep in the tails where 1 + erf cancels; a Load sums
     * at most 12 of them.
     */
    static final Tolerance NORMAL_CDF = new Tolerance(1e-14, 1e-12, "two normal CDF implementations, summed over ≤ 12 tokens");

    static void exactly(String what, int[] want, int[] got, Object context) {
        if (!Arrays.equals(want, got)) {
            fail(what + " differs: want " + Arrays.toString(want) + ", got " + Arrays.toString(got) + "\n  case: " + context);
        }
    }

    static void exactly(String what, int want, int got, Object context) {
        if (want != got) {
            fail(what + " differs: want " + want + ", got " + got + "\n  case: " + context);
        }
    }

    /** Bit for bit (the same computation must give the same bits; Arrays.equals compares doubleToLongBits). */
    static void bitwise(String what, double[] want, double[] got, Object context) {
        if (!Arrays.equals(want, got)) {
            int i = 0;
            while (i < Math.min(want.length, got.length) && Double.compare(want[i], got[i]) == 0) {
                i++;
            }
            fail(what + " is not bit-identical (lengths " + want.length + ", " + got.length + "; first difference at " + i
                    + (i < Math.min(want.length, got.length) ? ": want " + want[i] + ", got " + got[i] : "") + ")\n  case: " + context);
        }
    }

    static void bitwise(String what, double want, double got, Object context) {
        bitwise(what, new double[] {want}, new double[] {got}, context);
    }

    static void close(String what, double[] want, double[] got, Tolerance tol, Object context) {
        if (want.length != got.length) {
            fail(what + " has length " + got.length + ", want " + want.length + "\n  case: " + context);
        }
        double scale = 0;
        for (double w : want) {
            scale = Math.max(scale, Math.abs(w));
        }
        double bound = tol.bound(scale);
        int worst = -1;
        double worstErr = 0;
        int bad = 0;
        StringBuilder first = new StringBuilder();
        for (int i = 0; i < want.length; i++) {
            double err = Math.abs(got[i] - want[i]);
            if (!(err <= bound)) {
                if (bad < 10) {
                    first.append("\n  [").append(i).append("] want ").append(want[i]).append(", got ").append(got[i])
                            .append(", |diff| ").append(err);
                }
                bad++;
                if (worst < 0 || !(err <= worstErr)) {
                    worst = i;
                    worstErr = err;
                }
            }
        }
        if (bad > 0) {
            fail(what + ": " + bad + " of " + want.length + " values exceed " + bound + " (abs " + tol.abs() + " + rel "
                    + tol.rel() + " × max|want| " + scale + "; " + tol.reason() + "); worst at [" + worst + "]" + first
                    + "\n  case: " + context);
        }
    }

    static void close(String what, double want, double got, Tolerance tol, Object context) {
        close(what, new double[] {want}, new double[] {got}, tol, context);
    }

    /** True when a ≤ b within the rounding of REORDERED, for one-sided bounds. */
    static void atMost(String what, double value, double bound, Tolerance tol, Object context) {
        if (!(value <= bound + tol.bound(Math.abs(bound)))) {
            fail(what + " = " + value + " exceeds " + bound + " (" + tol.reason() + ")\n  case: " + context);
        }
    }
}

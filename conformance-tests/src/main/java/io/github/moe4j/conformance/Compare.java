package io.github.moe4j.conformance;

import io.github.moe4j.api.NonFiniteException;
import io.github.moe4j.api.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.opentest4j.AssertionFailedError;

/**
 * Comparisons with a report a person can read (STYLE §20): exact for discrete values and bits,
 * \( |got - want| \le rel|want| + abs \cdot scale \) for floats. A failed comparison throws
 * {@link AssertionFailedError} whose message names the quantity, how many elements differ, the
 * first {@value #SHOWN} mismatches and the worst one, each with its flat index, coordinates, both
 * values and the allowed difference, then the tolerance with its reason and the case.
 */
public final class Compare {
    /** How many mismatches a report lists before the worst one. */
    public static final int SHOWN = 10;

    private Compare() {}

    /** One element that differs. */
    public record Mismatch(int index, int[] coordinates, double want, double got, double allowed) {
        /** |got - want|, or infinity when either is not finite. */
        public double difference() {
            double d = Math.abs(got - want);
            return Double.isNaN(d) ? Double.POSITIVE_INFINITY : d;
        }

        @Override
        public String toString() {
            return String.format("[%d] %s want %s got %s |diff| %.3g allowed %.3g", index, Arrays.toString(coordinates),
                    num(want), num(got), difference(), allowed);
        }
    }

    /**
     * The outcome of one comparison.
     *
     * @param what       the quantity, e.g. {@code output}
     * @param size       how many elements were compared
     * @param mismatches every element that differs, in index order
     * @param worst      the mismatch with the largest difference relative to what was allowed, or null
     * @param header     the rule applied, for the message
     */
    public record Report(String what, int size, List<Mismatch> mismatches, Mismatch worst, String header) {
        /** Whether every element was within the rule. */
        public boolean passed() {
            return mismatches.isEmpty();
        }

        /** The readable message: the first {@value #SHOWN} mismatches, then the worst. */
        public String message(Object context) {
            StringBuilder sb = new StringBuilder();
            sb.append(what).append(": ").append(mismatches.size()).append(" of ").append(size)
                    .append(" elements differ; ").append(header).append('\n');
            for (int i = 0; i < Math.min(SHOWN, mismatches.size()); i++) {
                sb.append("  ").append(mismatches.get(i)).append('\n');
            }
            if (mismatches.size() > SHOWN) {
                sb.append("  ... ").append(mismatches.size() - SHOWN).append(" more\n");
            }
            if (worst != null) {
                sb.append("  worst: ").append(worst).append('\n');
            }
            if (context != null) {
                sb.append("case: ").append(context);
            }
            return sb.toString();
        }

        /** Throws {@link AssertionFailedError} with {@link #message} if anything differs. */
        public void assertPassed(Object context) {
            if (!passed()) {
                throw new AssertionFailedError(message(context));
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // floats

    /** Compares floats; scale = max|want| over the tensor. */
    public static Report floatsReport(String what, double[] want, double[] got, int[] shape, Tolerance tol) {
        return floatsReport(what, want, got, shape, tol, maxAbs(want));
    }

    /** Compares floats with an explicit scale (a loss's natural unit). */
    public static Report floatsReport(String what, double[] want, double[] got, int[] shape, Tolerance tol, double scale) {
        requireSameLength(what, want.length, got.length);
        List<Mismatch> list = new ArrayList<>();
        Mismatch worst = null;
        double worstRatio = -1;
        for (int i = 0; i < want.length; i++) {
            if (!tol.accepts(want[i], got[i], scale)) {
                Mismatch m = new Mismatch(i, coordinates(i, shape), want[i], got[i], tol.allowed(want[i], scale));
                list.add(m);
                double ratio = m.allowed() == 0 ? Double.POSITIVE_INFINITY : m.difference() / m.allowed();
                if (ratio > worstRatio || worst == null) {
                    worstRatio = ratio;
                    worst = m;
                }
            }
        }
        String header = "tolerance " + tol + ", scale " + num(scale);
        return new Report(what, want.length, list, worst, header);
    }

    /** Asserts a tensor is within tolerance of the oracle's double values (scale = max|want|). */
    public static void floats(String what, double[] want, Tensor got, Tolerance tol, Object context) {
        floatsReport(what, want, got.toDoubleArray(), got.shape(), tol).assertPassed(context);
    }

    /** Asserts float arrays agree within tolerance (scale = max|want|). */
    public static void floats(String what, double[] want, double[] got, int[] shape, Tolerance tol, Object context) {
        floatsReport(what, want, got, shape, tol).assertPassed(context);
    }

    /** Asserts a scalar is within tolerance, with an explicit scale. */
    public static void scalar(String what, double want, double got, Tolerance tol, double scale, Object context) {
        floatsReport(what, new double[] {want}, new double[] {got}, new int[] {1}, tol, scale).assertPassed(context);
    }

    // ---------------------------------------------------------------------------------------------
    // exact

    /** Compares integers exactly. */
    public static Report exactReport(String what, int[] want, int[] got, int[] shape) {
        requireSameLength(what, want.length, got.length);
        List<Mismatch> list = new ArrayList<>();
        for (int i = 0; i < want.length; i++) {
            if (want[i] != got[i]) {
                list.add(new Mismatch(i, coordinates(i, shape), want[i], got[i], 0));
            }
        }
        return new Report(what, want.length, list, list.isEmpty() ? null : list.get(0), "compared exactly");
    }

    /** Asserts integers are equal. */
    public static void exactly(String what, int[] want, int[] got, int[] shape, Object context) {
        exactReport(what, want, got, shape).assertPassed(context);
    }

    /** Compares float bits exactly ({@code -0.0} differs from {@code 0.0}; NaN equals NaN of the same bits). */
    public static Report bitsReport(String what, float[] want, float[] got, int[] shape) {
        requireSameLength(what, want.length, got.length);
        List<Mismatch> list = new ArrayList<>();
        for (int i = 0; i < want.length; i++) {
            if (Float.floatToRawIntBits(want[i]) != Float.floatToRawIntBits(got[i])) {
                list.add(new Mismatch(i, coordinates(i, shape), want[i], got[i], 0));
            }
        }
        return new Report(what, want.length, list, list.isEmpty() ? null : list.get(0), "compared bit for bit");
    }

    /** Asserts two tensors have the same shape and the same bits. */
    public static void bits(String what, Tensor want, Tensor got, Object context) {
        if (!Arrays.equals(want.shape(), got.shape())) {
            throw new AssertionFailedError(what + ": shape " + Arrays.toString(got.shape()) + " but "
                    + Arrays.toString(want.shape()) + " was expected\ncase: " + context);
        }
        bitsReport(what, want.toArray(), got.toArray(), want.shape()).assertPassed(context);
    }

    /** Asserts a tensor has the expected shape. */
    public static void shape(String what, int[] want, Tensor got, Object context) {
        if (got == null) {
            throw new AssertionFailedError(what + " is null but shape " + Arrays.toString(want) + " was expected\ncase: " + context);
        }
        if (!Arrays.equals(want, got.shape())) {
            throw new AssertionFailedError(what + " has shape " + Arrays.toString(got.shape()) + " but "
                    + Arrays.toString(want) + " was expected\ncase: " + context);
        }
    }

    /** Fails with a message and the case. */
    public static AssertionFailedError failure(String message, Object context) {
        return new AssertionFailedError(message + (context == null ? "" : "\ncase: " + context));
    }

    // ---------------------------------------------------------------------------------------------

    /** max |v|, 0 for an empty array; NaN is ignored. */
    public static double maxAbs(double[] v) {
        double m = 0;
        for (double x : v) {
            if (Math.abs(x) > m) {
                m = Math.abs(x);
            }
        }
        return m;
    }

    private static int[] coordinates(int index, int[] shape) {
        return shape == null || shape.length == 0 ? new int[] {index} : NonFiniteException.coordinates(index, shape);
    }

    private static void requireSameLength(String what, int want, int got) {
        if (want != got) {
            throw new AssertionFailedError(what + ": " + got + " elements but " + want + " were expected");
        }
    }

    private static String num(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e9) {
            return Long.toString((long) v) + (v == 0 && 1 / v < 0 ? " (-0)" : "");
        }
        return String.format("%.9g", v);
    }
}

package io.github.moe4j.conformance;

import io.github.moe4j.api.Checks;

/**
 * How far a backend's float value may be from the oracle's (SPEC §11):
 * \( |got - want| \le rel \cdot |want| + abs \cdot scale + floor \), where scale is the largest |want|
 * of the tensor (or, for a loss, the loss's natural unit, stated where it is used).
 *
 * @param rel    the relative part, multiplying |want| of the element
 * @param abs    the absolute part, multiplying the tensor's scale
 * @param floor  the underflow floor: differences the format cannot represent at full precision
 *               (a few of its smallest normal numbers), whatever the scale; 0 for none
 * @param reason why the bound is what it is: the error growth it covers, in words a reader can check
 */
public record Tolerance(double rel, double abs, double floor, String reason) {

    public Tolerance {
        Checks.requireNonNegativeFinite(rel, "tolerance.rel");
        Checks.requireNonNegativeFinite(abs, "tolerance.abs");
        Checks.requireNonNegativeFinite(floor, "tolerance.floor");
        Checks.requireNonNull(reason, "tolerance.reason");
    }

    /** A tolerance without an underflow floor. */
    public Tolerance(double rel, double abs, String reason) {
        this(rel, abs, 0, reason);
    }

    /** Exact equality: no error allowed. */
    public static Tolerance exact(String reason) {
        return new Tolerance(0, 0, 0, reason);
    }

    /** The largest |got - want| allowed for one element. */
    public double allowed(double want, double scale) {
        return rel * Math.abs(want) + abs * scale + floor;
    }

    /** Whether {@code got} is within this tolerance of {@code want}; NaN and infinities never are unless identical. */
    public boolean accepts(double want, double got, double scale) {
        if (!Double.isFinite(want) || !Double.isFinite(got)) {
            return Double.compare(want, got) == 0;
        }
        return Math.abs(got - want) <= allowed(want, scale);
    }

    @Override
    public String toString() {
        return String.format("|got - want| <= %.3g*|want| + %.3g*scale%s (%s)", rel, abs,
                floor == 0 ? "" : String.format(" + %.3g", floor), reason);
    }
}

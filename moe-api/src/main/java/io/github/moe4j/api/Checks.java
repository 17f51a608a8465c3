package io.github.moe4j.api;

import java.util.Objects;

/**
 * Argument checks whose messages give the name, the value and the rule, in the manner of
 * Commons RNG's {@code InternalUtils}. Comparisons are written so that NaN fails them.
 */
public final class Checks {
    private Checks() {}

    /** Returns {@code value} if it is at least 1. */
    public static int requirePositive(int value, String name) {
        if (value < 1) {
            throw new IllegalArgumentException(name + " must be >= 1, got " + value);
        }
        return value;
    }

    /** Returns {@code value} if it is at least 0. */
    public static int requireNonNegative(int value, String name) {
        if (value < 0) {
            throw new IllegalArgumentException(name + " must be >= 0, got " + value);
        }
        return value;
    }

    /** Returns {@code value} if it is in {@code [min, max]}. */
    public static int requireInRange(int value, int min, int max, String name) {
        if (value < min || value > max) {
            throw new IllegalArgumentException(name + " must be in [" + min + ", " + max + "], got " + value);
        }
        return value;
    }

    /** Returns {@code value} if it is finite and strictly positive. */
    public static double requireStrictlyPositiveFinite(double value, String name) {
        if (!(value > 0 && value < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException(name + " is not strictly positive and finite: " + value);
        }
        return value;
    }

    /** Returns {@code value} if it is finite and at least 0. */
    public static double requireNonNegativeFinite(double value, String name) {
        if (!(value >= 0 && value < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException(name + " is not non-negative and finite: " + value);
        }
        return value;
    }

    /** Returns {@code value} if it is in {@code [min, max]} (NaN fails). */
    public static double requireInRange(double value, double min, double max, String name) {
        if (!(value >= min && value <= max)) {
            throw new IllegalArgumentException(name + " must be in [" + min + ", " + max + "], got " + value);
        }
        return value;
    }

    /** Returns {@code value} if it is not null. */
    public static <T> T requireNonNull(T value, String name) {
        return Objects.requireNonNull(value, () -> name + " must not be null");
    }

    /**
     * Checks that every element is finite.
     *
     * @throws NonFiniteException naming {@code name}, the flat index and its coordinates in {@code shape}
     */
    public static void requireFinite(float[] data, String name, int[] shape) {
        for (int i = 0; i < data.length; i++) {
            if (!Float.isFinite(data[i])) {
                throw new NonFiniteException(name, i, shape, data[i]);
            }
        }
    }
}

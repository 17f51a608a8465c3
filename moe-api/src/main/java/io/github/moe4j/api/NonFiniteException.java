package io.github.moe4j.api;

import java.util.Arrays;

/**
 * A NaN or an infinity was found in an input, a weight or a logit. Nothing is routed silently:
 * the exception names the tensor and the position of the first offending element.
 */
public final class NonFiniteException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    private final String tensor;
    private final int flatIndex;

    /**
     * @param tensor    the tensor's name, e.g. {@code "input"} or {@code "weights.router"}
     * @param flatIndex the row-major flat index of the first non-finite element
     * @param shape     the tensor's shape, used to print the coordinates
     * @param value     the offending value
     */
    public NonFiniteException(String tensor, int flatIndex, int[] shape, double value) {
        super(tensor + " has a non-finite value " + value + " at " + Arrays.toString(coordinates(flatIndex, shape))
                + " (flat index " + flatIndex + ", shape " + Arrays.toString(shape) + ")");
        this.tensor = tensor;
        this.flatIndex = flatIndex;
    }

    /** The name of the tensor holding the value. */
    public String tensor() {
        return tensor;
    }

    /** The row-major flat index of the value. */
    public int flatIndex() {
        return flatIndex;
    }

    /** The coordinates of a row-major flat index in a tensor of the given shape. */
    public static int[] coordinates(int flatIndex, int[] shape) {
        int[] coordinates = new int[shape.length];
        int rest = flatIndex;
        for (int axis = shape.length - 1; axis >= 0; axis--) {
            int size = Math.max(1, shape[axis]);
            coordinates[axis] = rest % size;
            rest /= size;
        }
        return coordinates;
    }
}

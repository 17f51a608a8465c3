package io.github.moe4j.api;

import java.util.Arrays;

/**
 * A row-major float32 array with a shape: the transfer object of the API.
 *
 * <p>Not a tensor library: no strides, no views, no arithmetic. The data is copied in at
 * construction and copied out by {@link #toArray()}, so a {@code Tensor} is immutable and can be
 * shared between threads. Equality is by shape and by the bits of every element.
 */
public final class Tensor {
    private final float[] data;
    private final int[] shape;

    private Tensor(float[] data, int[] shape) {
        this.data = data;
        this.shape = shape;
    }

    /**
     * A tensor holding a copy of {@code data}.
     *
     * @throws IllegalArgumentException if a dimension is negative or the data length is not the
     *                                  product of the shape
     */
    public static Tensor of(float[] data, int... shape) {
        Checks.requireNonNull(data, "data");
        return adopt(data.clone(), shape);
    }

    /**
     * A tensor over {@code data} itself, without a copy: for a backend handing over an array it has
     * just filled (an output, a gradient), which would otherwise exist twice at the moment of
     * handing over. The caller gives the array up: writing to it afterwards breaks the tensor's
     * immutability.
     *
     * @throws IllegalArgumentException if a dimension is negative or the data length is not the
     *                                  product of the shape
     */
    public static Tensor adopt(float[] data, int... shape) {
        Checks.requireNonNull(data, "data");
        int[] s = checkShape(shape);
        long size = size(s);
        if (data.length != size) {
            throw new IllegalArgumentException("data has " + data.length + " elements but shape "
                    + Arrays.toString(s) + " needs " + size);
        }
        return new Tensor(data, s);
    }

    /** A tensor from double values, each rounded to the nearest float. */
    public static Tensor ofDoubles(double[] data, int... shape) {
        Checks.requireNonNull(data, "data");
        float[] f = new float[data.length];
        for (int i = 0; i < data.length; i++) {
            f[i] = (float) data[i];
        }
        return adopt(f, shape);
    }

    /** A tensor of zeros. */
    public static Tensor zeros(int... shape) {
        int[] s = checkShape(shape);
        long size = size(s);
        if (size > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("shape " + Arrays.toString(s) + " has " + size + " elements, more than a Java array holds");
        }
        return new Tensor(new float[(int) size], s);
    }

    private static int[] checkShape(int[] shape) {
        Checks.requireNonNull(shape, "shape");
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] < 0) {
                throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " has a negative dimension at axis " + i);
            }
        }
        return shape.clone();
    }

    private static long size(int[] shape) {
        long n = 1;
        for (int dim : shape) {
            n *= dim;
        }
        return n;
    }

    /** A copy of the shape. */
    public int[] shape() {
        return shape.clone();
    }

    /** The number of axes. */
    public int rank() {
        return shape.length;
    }

    /** The size of one axis. */
    public int dim(int axis) {
        return shape[axis];
    }

    /** The number of elements. */
    public int size() {
        return data.length;
    }

    /** The element at a row-major flat index. */
    public float get(int flatIndex) {
        return data[flatIndex];
    }

    /** The element at the given coordinates. */
    public float get(int... index) {
        if (index.length != shape.length) {
            throw new IllegalArgumentException("index has " + index.length + " coordinates but the tensor has rank " + shape.length);
        }
        int flat = 0;
        for (int axis = 0; axis < shape.length; axis++) {
            if (index[axis] < 0 || index[axis] >= shape[axis]) {
                throw new IndexOutOfBoundsException("index " + Arrays.toString(index) + " is outside shape " + Arrays.toString(shape));
            }
            flat = flat * shape[axis] + index[axis];
        }
        return data[flat];
    }

    /** A copy of the data, row-major. */
    public float[] toArray() {
        return data.clone();
    }

    /** The data widened to double, row-major. */
    public double[] toDoubleArray() {
        double[] d = new double[data.length];
        for (int i = 0; i < data.length; i++) {
            d[i] = data[i];
        }
        return d;
    }

    /**
     * Checks that this tensor has the expected shape.
     *
     * @param name    what the tensor is, for the message (e.g. {@code "input"})
     * @param layout  the shape's meaning, for the message (e.g. {@code "[tokens, modelDim]"})
     * @param expected the expected shape
     * @throws IllegalArgumentException naming both shapes
     */
    public Tensor requireShape(String name, String layout, int... expected) {
        if (!Arrays.equals(shape, expected)) {
            throw new IllegalArgumentException(name + " has shape " + Arrays.toString(shape) + " but " + layout
                    + " = " + Arrays.toString(expected) + " was expected");
        }
        return this;
    }

    /**
     * Checks that every element is finite.
     *
     * @throws NonFiniteException naming the tensor and the position
     */
    public Tensor requireFinite(String name) {
        Checks.requireFinite(data, name, shape);
        return this;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Tensor t && Arrays.equals(shape, t.shape) && Arrays.equals(data, t.data);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(shape) + Arrays.hashCode(data);
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("Tensor").append(Arrays.toString(shape)).append(' ');
        int shown = Math.min(data.length, 8);
        sb.append('[');
        for (int i = 0; i < shown; i++) {
            sb.append(i == 0 ? "" : ", ").append(data[i]);
        }
        return sb.append(data.length > shown ? ", ...]" : "]").toString();
    }
}

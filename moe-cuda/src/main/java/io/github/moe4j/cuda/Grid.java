package io.github.moe4j.cuda;

/**
 * The shape of a kernel launch in work-items (OpenCL's global and local sizes). A CUDA launch
 * uses {@code globalX / localX} by {@code globalY / localY} blocks of {@code localX} by
 * {@code localY} threads. Global sizes are multiples of the local ones; kernels check bounds.
 *
 * @param globalX work-items along dimension 0
 * @param globalY work-items along dimension 1
 * @param localX  work-group (block) size along dimension 0
 * @param localY  work-group (block) size along dimension 1
 */
record Grid(int globalX, int globalY, int localX, int localY) {
    /** The work-group size of one-dimensional launches. */
    static final int LINEAR_GROUP = 128;
    /** The tile of the portable GEMM ({@code MOE_TILE} in gemm.cu). */
    static final int GEMM_TILE = 16;

    Grid {
        if (localX < 1 || localY < 1 || globalX < 0 || globalY < 0 || globalX % localX != 0 || globalY % localY != 0) {
            throw new IllegalArgumentException("bad grid: global " + globalX + "x" + globalY + ", local " + localX + "x" + localY);
        }
    }

    /** At least n work-items in one dimension, in groups of {@link #LINEAR_GROUP}. */
    static Grid linear(long n) {
        return new Grid(roundUp(n, LINEAR_GROUP), 1, LINEAR_GROUP, 1);
    }

    /** At least columns by rows work-items in GEMM tiles. */
    static Grid tiles(int columns, int rows) {
        return new Grid(roundUp(columns, GEMM_TILE), roundUp(rows, GEMM_TILE), GEMM_TILE, GEMM_TILE);
    }

    /** Whether the launch has no work-item at all (and is skipped). */
    boolean isEmpty() {
        return globalX == 0 || globalY == 0;
    }

    private static int roundUp(long n, int multiple) {
        long r = (n + multiple - 1) / multiple * multiple;
        if (r > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("launch of " + n + " work-items is too large for one dimension");
        }
        return (int) r;
    }
}

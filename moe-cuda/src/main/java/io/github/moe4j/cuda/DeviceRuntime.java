package io.github.moe4j.cuda;

/**
 * The small device interface the CUDA backend's orchestration talks to: allocate, copy in and out,
 * launch a kernel by name, GEMM, free. Implemented with the JCuda driver API and cuBLAS
 * ({@link CudaDriverRuntime}, what users get) and, in this module's tests, with JOCL on OpenCL, which
 * runs the same kernel sources with {@code moe_portable.h} prepended.
 *
 * <p>Buffers hold 4-byte elements (float or int). Every method throws
 * {@link io.github.moe4j.api.MoeBackendException} naming the native error. Not thread-safe: the
 * backend serialises all calls. Closing frees every buffer still allocated; closing twice is harmless.
 */
interface DeviceRuntime extends AutoCloseable {

    /** The device and platform, e.g. {@code "NVIDIA L4 (sm_89), CUDA driver 12.4"}. */
    String device();

    /** Which GEMM {@link #gemm} runs, e.g. {@code "cuBLAS 12.0"} or {@code "moe4j gemm_tiled kernel"}. */
    String gemmImplementation();

    /** A new buffer of {@code bytes} bytes (at least 4). */
    DeviceBuffer allocate(long bytes);

    /** Frees a buffer of this runtime; freeing one twice is an error. */
    void free(DeviceBuffer buffer);

    /** Copies {@code src} to the start of {@code dst}. */
    void copyIn(float[] src, DeviceBuffer dst);

    /** Copies {@code src} to the start of {@code dst}. */
    void copyIn(int[] src, DeviceBuffer dst);

    /** Copies the first {@code dst.length} floats of {@code src} into {@code dst} (waits for the device). */
    void copyOut(DeviceBuffer src, float[] dst);

    /** Copies the first {@code dst.length} ints of {@code src} into {@code dst} (waits for the device). */
    void copyOut(DeviceBuffer src, int[] dst);

    /**
     * Launches a kernel; an empty grid launches nothing.
     *
     * @param args in the kernel's parameter order: {@link DeviceBuffer}, {@link Integer} or {@link Float}
     */
    void launch(Kernel kernel, Grid grid, Object... args);

    /**
     * Which operands of a GEMM are transposed and whether it adds to C.
     *
     * @param transA     A is stored [k, m] and used transposed
     * @param transB     B is stored [n, k] and used transposed
     * @param accumulate C += op(A) op(B) instead of C = op(A) op(B)
     */
    record GemmOps(boolean transA, boolean transB, boolean accumulate) {
        /** C = A B. */
        static final GemmOps PLAIN = new GemmOps(false, false, false);
    }

    /**
     * Row-major \( C = A B \), A [m, k] at element {@code aOffset}, B [k, n] at {@code bOffset},
     * C [m, n] at {@code cOffset}, each contiguous. Nothing happens when m or n is 0; k = 0 gives
     * C = 0.
     */
    default void gemm(int m, int n, int k, DeviceBuffer a, long aOffset, DeviceBuffer b, long bOffset, DeviceBuffer c, long cOffset) {
        gemm(GemmOps.PLAIN, m, n, k, a, aOffset, b, bOffset, c, cOffset);
    }

    /**
     * Row-major \( C = \mathrm{op}(A)\, \mathrm{op}(B) \) (or {@code C +=} that when
     * {@code ops.accumulate()}), op(A) [m, k], op(B) [k, n], C [m, n], each stored contiguous at
     * its element offset (a transposed A stored [k, m], a transposed B [n, k]). Nothing happens when
     * m or n is 0; k = 0 gives C = 0 (or leaves C as it is when accumulating).
     */
    void gemm(GemmOps ops, int m, int n, int k, DeviceBuffer a, long aOffset, DeviceBuffer b, long bOffset, DeviceBuffer c,
              long cOffset);

    /**
     * {@code batch} row-major GEMMs as {@link #gemm(GemmOps, int, int, int, DeviceBuffer, long, DeviceBuffer, long, DeviceBuffer, long)},
     * the i-th with its operands at {@code aOffset + i * strideA}, {@code bOffset + i * strideB} and
     * {@code cOffset + i * strideC} elements: one call for the whole batch (one
     * {@code cublasSgemmStridedBatched} with cuBLAS). The C matrices must not overlap. Nothing
     * happens when batch, m or n is 0; k = 0 gives C = 0 (or leaves C as it is when accumulating).
     */
    void gemmStridedBatched(GemmOps ops, int m, int n, int k, DeviceBuffer a, long aOffset, long strideA, DeviceBuffer b,
                            long bOffset, long strideB, DeviceBuffer c, long cOffset, long strideC, int batch);

    /** How many buffers are allocated and not yet freed (for leak tests). */
    int liveAllocations();

    @Override
    void close();

    /**
     * The portable GEMM kernel over a strided batch, one {@link #portableGemm} launch per batch
     * entry, for runtimes without a vendor GEMM.
     */
    static void portableGemmStridedBatched(DeviceRuntime runtime, GemmOps ops, int m, int n, int k, DeviceBuffer a, long aOffset,
                                           long strideA, DeviceBuffer b, long bOffset, long strideB, DeviceBuffer c, long cOffset,
                                           long strideC, int batch) {
        for (int i = 0; i < batch; i++) {
            portableGemm(runtime, ops, m, n, k, a, aOffset + i * strideA, b, bOffset + i * strideB, c, cOffset + i * strideC);
        }
    }

    /** The portable GEMM kernel, for runtimes without a vendor GEMM. */
    static void portableGemm(DeviceRuntime runtime, GemmOps ops, int m, int n, int k, DeviceBuffer a, long aOffset,
                             DeviceBuffer b, long bOffset, DeviceBuffer c, long cOffset) {
        if (aOffset > Integer.MAX_VALUE || bOffset > Integer.MAX_VALUE || cOffset > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("gemm offsets beyond 2^31 - 1 elements are not supported by gemm_tiled");
        }
        runtime.launch(Kernel.GEMM_TILED, Grid.tiles(n, m), a, (int) aOffset, b, (int) bOffset, c, (int) cOffset, m, n, k,
                ops.transA() ? 1 : 0, ops.transB() ? 1 : 0, ops.accumulate() ? 1 : 0);
    }
}

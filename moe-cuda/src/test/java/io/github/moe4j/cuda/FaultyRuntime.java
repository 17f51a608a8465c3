package io.github.moe4j.cuda;

import io.github.moe4j.api.MoeBackendException;

/**
 * A {@link DeviceRuntime} that delegates to a real one and fails the n-th launch, GEMM or
 * allocation with a {@link MoeBackendException}, as a device error would: for tests that every
 * path releases its memory. It also records the GEMM calls made through the interface.
 */
final class FaultyRuntime implements DeviceRuntime {
    private final DeviceRuntime delegate;
    private int failLaunchAt = -1;
    private int failAllocationAt = -1;
    private int launches;
    private int allocations;
    private final java.util.List<String> gemmCalls = new java.util.ArrayList<>();

    FaultyRuntime(DeviceRuntime delegate) {
        this.delegate = delegate;
    }

    /** Fails the n-th launch or GEMM from now on (1-based); 0 turns it off. */
    void failLaunch(int n) {
        launches = 0;
        failLaunchAt = n;
    }

    /** Fails the n-th allocation from now on (1-based); 0 turns it off. */
    void failAllocation(int n) {
        allocations = 0;
        failAllocationAt = n;
    }

    /** Launches and GEMMs since the last {@link #failLaunch}. */
    int launches() {
        return launches;
    }

    /**
     * Every GEMM call made through this runtime's interface since the last {@link #clearGemmCalls}, in
     * order: {@code "gemm m,n,k"} or {@code "batched m,n,k x batch"} (calls that do nothing included).
     */
    java.util.List<String> gemmCalls() {
        return java.util.List.copyOf(gemmCalls);
    }

    /** Forgets the GEMM calls recorded so far. */
    void clearGemmCalls() {
        gemmCalls.clear();
    }

    private void countLaunch(String what) {
        if (++launches == failLaunchAt) {
            throw new MoeBackendException("injected failure of " + what + ": CL_OUT_OF_RESOURCES");
        }
    }

    @Override
    public String device() {
        return delegate.device() + " [fault injection]";
    }

    @Override
    public String gemmImplementation() {
        return delegate.gemmImplementation();
    }

    @Override
    public DeviceBuffer allocate(long bytes) {
        if (++allocations == failAllocationAt) {
            throw new MoeBackendException("injected failure of allocate(" + bytes + "): CL_MEM_OBJECT_ALLOCATION_FAILURE");
        }
        return delegate.allocate(bytes);
    }

    @Override
    public void free(DeviceBuffer buffer) {
        delegate.free(buffer);
    }

    @Override
    public void copyIn(float[] src, DeviceBuffer dst) {
        delegate.copyIn(src, dst);
    }

    @Override
    public void copyIn(int[] src, DeviceBuffer dst) {
        delegate.copyIn(src, dst);
    }

    @Override
    public void copyOut(DeviceBuffer src, float[] dst) {
        delegate.copyOut(src, dst);
    }

    @Override
    public void copyOut(DeviceBuffer src, int[] dst) {
        delegate.copyOut(src, dst);
    }

    @Override
    public void launch(Kernel kernel, Grid grid, Object... args) {
        countLaunch(kernel.entryPoint());
        delegate.launch(kernel, grid, args);
    }

    @Override
    public void gemm(GemmOps ops, int m, int n, int k, DeviceBuffer a, long aOffset, DeviceBuffer b, long bOffset, DeviceBuffer c,
                     long cOffset) {
        countLaunch("gemm");
        gemmCalls.add("gemm " + m + "," + n + "," + k);
        delegate.gemm(ops, m, n, k, a, aOffset, b, bOffset, c, cOffset);
    }

    @Override
    public void gemmStridedBatched(GemmOps ops, int m, int n, int k, DeviceBuffer a, long aOffset, long strideA, DeviceBuffer b,
                                   long bOffset, long strideB, DeviceBuffer c, long cOffset, long strideC, int batch) {
        countLaunch("gemmStridedBatched");
        gemmCalls.add("batched " + m + "," + n + "," + k + " x " + batch);
        delegate.gemmStridedBatched(ops, m, n, k, a, aOffset, strideA, b, bOffset, strideB, c, cOffset, strideC, batch);
    }

    @Override
    public int liveAllocations() {
        return delegate.liveAllocations();
    }

    @Override
    public void close() {
        delegate.close();
    }
}

package io.github.moe4j.cpu;

import io.github.moe4j.api.Checks;
import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Support;

/**
 * The CPU backend (the reference's {@code ReferenceBackend}, fast): float32 layers whose expert
 * GEMMs run on BLAS ({@link BlasInfo}) over a fixed pool of threads shared by the backend's layers.
 * It runs every configuration the reference runs, forward and backward.
 */
public final class CpuBackend implements MoeBackend {
    /** The system property that sets the number of threads (default: the available processors). */
    public static final String THREADS_PROPERTY = "moe4j.cpu.threads";

    private final Workers workers;
    private final BlasInfo blas;
    private final RowMajorGemm gemm;
    private volatile boolean closed;

    /** A backend with {@code threads} threads, the calling thread included. */
    public CpuBackend(int threads) {
        this.workers = new Workers(Checks.requirePositive(threads, "threads"));
        this.blas = BlasInfo.get();
        this.gemm = new RowMajorGemm(blas.blas());
    }

    /** The thread count {@value #THREADS_PROPERTY} asks for, else the available processors. */
    static int defaultThreads() {
        String p = System.getProperty(THREADS_PROPERTY);
        if (p == null || p.isBlank()) {
            return Runtime.getRuntime().availableProcessors();
        }
        try {
            int n = Integer.parseInt(p.trim());
            if (n >= 1) {
                return n;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException(THREADS_PROPERTY + " = '" + p + "' must be a positive integer");
    }

    @Override
    public String name() {
        return CpuBackendProvider.NAME;
    }

    @Override
    public String device() {
        return describe(workers.threads());
    }

    /** What {@link #device()} says for a pool of that size: CPU, threads, BLAS, activation, and the fallback notice if any. */
    static String describe(int threads) {
        BlasInfo b = BlasInfo.get();
        String openBlasThreads = System.getenv("OPENBLAS_NUM_THREADS");
        String arch = System.getProperty("os.arch");
        return "CPU " + ("amd64".equals(arch) ? "x86_64" : arch) + ", " + threads + (threads == 1 ? " thread" : " threads")
                + ", BLAS: " + b.description()
                + (b.isNative() && openBlasThreads != null ? ", OPENBLAS_NUM_THREADS=" + openBlasThreads : "")
                + ", " + ExpertActivation.description()
                + (b.notice().isEmpty() ? "" : " [" + b.notice() + "]");
    }

    /** Whether the GEMMs run on a native BLAS. */
    public boolean nativeBlas() {
        return blas.isNative();
    }

    /** The BLAS implementation's class, e.g. {@code dev.ludovic.netlib.blas.JNIBLAS}. */
    public String blasImplementation() {
        return blas.blas().getClass().getName();
    }

    @Override
    public Support supports(MoeConfig config) {
        Checks.requireNonNull(config, "config");
        return Support.YES;
    }

    @Override
    public MoeLayer createLayer(MoeConfig config, MoeWeights weights) {
        return createLayer(config, weights, CpuLayer.COL_BLOCK);
    }

    /** A layer whose weight-gradient tasks have {@code colBlock} output columns: {@link CpuLayer#COL_BLOCK}, or fewer in tests. */
    CpuLayer createLayer(MoeConfig config, MoeWeights weights, int colBlock) {
        if (closed) {
            throw new IllegalStateException("this CPU backend was closed");
        }
        return new CpuLayer(config, weights, workers, gemm, colBlock);
    }

    @Override
    public void close() {
        closed = true;
        workers.close();
    }
}

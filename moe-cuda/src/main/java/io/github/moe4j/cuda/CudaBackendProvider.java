package io.github.moe4j.cuda;

import io.github.moe4j.api.Availability;
import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeBackendException;
import io.github.moe4j.api.MoeBackendProvider;

/**
 * Registers the CUDA backend with {@link java.util.ServiceLoader} as {@code "cuda"}, priority 300
 * (a GPU backend on a GPU). {@link #availability()} never throws and never crashes the JVM: without a
 * driver it says {@code "unavailable: libcuda.so.1 not found ..."}, without a device or with one
 * older than compute capability 7.5 it says so, and when cuBLAS is missing it is still available
 * and says that GEMMs use moe4j's own kernel.
 */
public final class CudaBackendProvider implements MoeBackendProvider {
    /** The backend's name. */
    public static final String NAME = "cuda";
    /** {@link io.github.moe4j.api.MoeBackends#best()} prefers a GPU backend on a GPU. */
    public static final int PRIORITY = 300;

    /** For {@link java.util.ServiceLoader}. */
    public CudaBackendProvider() {}

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public int priority() {
        return PRIORITY;
    }

    @Override
    public Availability availability() {
        try {
            return CudaProbe.availability();
        } catch (Throwable t) {
            return Availability.no("unavailable: the CUDA probe failed: " + t);
        }
    }

    /**
     * Opens device 0.
     *
     * @throws MoeBackendException if CUDA is not available here, with the reason
     */
    @Override
    public MoeBackend open() {
        Availability a = availability();
        if (!a.available()) {
            throw new MoeBackendException("backend 'cuda' is not available: " + a.reason());
        }
        return new CudaBackend(CudaDriverRuntime.open(0));
    }
}

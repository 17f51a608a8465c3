package io.github.moe4j.cuda;

import io.github.moe4j.api.Availability;
import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeBackendException;
import io.github.moe4j.api.MoeBackendProvider;

/**
 * Registers the CUDA backend with {@link java.util.ServiceLoader} as {@code "cuda"}. Its priority is
 * {@value #PRIORITY}, below the reference, while the backend has not passed the conformance suite on
 * a GPU (it has passed it on PoCL only), so {@link io.github.moe4j.api.MoeBackends#best()} never picks
 * it over the reference; open it by name. Once certified it takes {@value #GPU_PRIORITY} (a GPU
 * backend on a GPU; moe4j issue 6). {@link #availability()} never throws and never crashes the JVM: without a
 * driver it says {@code "unavailable: libcuda.so.1 not found ..."}, without a device or with one
 * older than compute capability 7.5 it says so, and when cuBLAS is missing it is still available
 * and says that GEMMs use moe4j's own kernel.
 */
public final class CudaBackendProvider implements MoeBackendProvider {
    /** The backend's name. */
    public static final String NAME = "cuda";
    /** A GPU backend on a GPU, once certified. */
    public static final int GPU_PRIORITY = 300;
    /** While incomplete and uncertified: below the reference's 0. */
    public static final int PRIORITY = -100;

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

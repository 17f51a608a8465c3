package io.github.moe4j.opencl;

import io.github.moe4j.api.Availability;
import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeBackendException;
import io.github.moe4j.api.MoeBackendProvider;

/**
 * Registers the OpenCL backend with {@link java.util.ServiceLoader}. Availability comes from a
 * probe that runs once per JVM: it finds an OpenCL device and compiles every kernel class for it
 * (a few seconds on PoCL); it never throws, and a missing library, platform or device, or a kernel
 * that does not compile, makes the backend unavailable with the reason.
 *
 * <p>Priority: {@value #GPU_PRIORITY} on a GPU or accelerator, {@value #CPU_PRIORITY} on a CPU
 * device such as PoCL (below a native CPU backend, above the reference).
 */
public final class OpenClBackendProvider implements MoeBackendProvider {
    /** The backend's name. */
    public static final String NAME = "opencl";
    /** Priority on a GPU or accelerator. */
    public static final int GPU_PRIORITY = 300;
    /** Priority on a CPU OpenCL device. */
    public static final int CPU_PRIORITY = 100;

    /** For {@link java.util.ServiceLoader}. */
    public OpenClBackendProvider() {}

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public int priority() {
        OpenClDeviceProbe.Result r = OpenClDeviceProbe.get();
        return r.failure() == null && r.gpu() ? GPU_PRIORITY : CPU_PRIORITY;
    }

    @Override
    public Availability availability() {
        return OpenClDeviceProbe.get().availability();
    }

    @Override
    public MoeBackend open() {
        OpenClDeviceProbe.Result r = OpenClDeviceProbe.get();
        if (r.failure() != null) {
            throw new MoeBackendException("the OpenCL backend is not available: " + r.failure());
        }
        return new OpenClBackend(r.device(), r.description());
    }
}

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
 * <p>Priority: {@value #PRIORITY}, below the reference. The backend runs every configuration and
 * passes the conformance suite on PoCL, but measured there (moe-bench, 2026-11-23) it is slower
 * than the reference on the same CPU (S forward 2.3 s against 0.41 s), and it has not run on a
 * GPU, so {@link io.github.moe4j.api.MoeBackends#best()} does not pick it; open it by name
 * ({@code MoeBackends.open("opencl")}). Certified on a GPU it would take {@value #GPU_PRIORITY},
 * above moe-cpu; {@value #CPU_PRIORITY} is for a CPU device where it beats the reference. A
 * constant also keeps sorting the providers from probing the device.
 */
public final class OpenClBackendProvider implements MoeBackendProvider {
    /** The backend's name. */
    public static final String NAME = "opencl";
    /** Priority on a GPU or accelerator, once certified. */
    public static final int GPU_PRIORITY = 300;
    /** Priority on a CPU OpenCL device, once faster there than the reference. */
    public static final int CPU_PRIORITY = 100;
    /** Priority today: below the reference's 0 (slower than it on PoCL, never run on a GPU). */
    public static final int PRIORITY = -100;

    /** For {@link java.util.ServiceLoader}. */
    public OpenClBackendProvider() {}

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

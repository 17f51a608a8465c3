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
 * <p>Priority: {@value #PRIORITY}, below the reference, for now. The backend runs the forward pass
 * of token-choice routing only (see {@link OpenClBackend#supports}) and has not passed the
 * conformance suite, so {@link io.github.moe4j.api.MoeBackends#best()} must not pick it over the
 * reference; open it by name ({@code MoeBackends.open("opencl")}). Once it is complete and certified
 * it takes {@value #GPU_PRIORITY} on a GPU and {@value #CPU_PRIORITY} on a CPU device such as PoCL
 * (moe4j issue 5). A constant also keeps sorting the providers from probing the device.
 */
public final class OpenClBackendProvider implements MoeBackendProvider {
    /** The backend's name. */
    public static final String NAME = "opencl";
    /** Priority on a GPU or accelerator, once certified. */
    public static final int GPU_PRIORITY = 300;
    /** Priority on a CPU OpenCL device, once certified. */
    public static final int CPU_PRIORITY = 100;
    /** Priority while the backend is incomplete and uncertified: below the reference's 0. */
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

package io.github.moe4j.conformance.float32;

import io.github.moe4j.api.Availability;
import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeBackendProvider;

/**
 * Registers {@link Float32Backend} in this module's test resources, so that
 * {@code ClassPathBackendsConformanceTest} certifies a float32 backend found on the class path,
 * as it will OpenCL and CUDA.
 */
public final class Float32BackendProvider implements MoeBackendProvider {
    /** The provider's name. */
    public static final String NAME = "float32-test";

    /** For {@link java.util.ServiceLoader}. */
    public Float32BackendProvider() {}

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public int priority() {
        return -1;
    }

    @Override
    public Availability availability() {
        return Availability.yes("Java float32 forward (test stand-in)");
    }

    @Override
    public MoeBackend open() {
        return new Float32Backend();
    }
}

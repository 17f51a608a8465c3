package io.github.moe4j.cpu;

import io.github.moe4j.api.Availability;
import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeBackendProvider;

/**
 * The CPU backend's provider (the reference's {@code ReferenceBackendProvider}), named
 * {@value #NAME}: always available (without a native BLAS it runs on netlib's Java BLAS and says
 * so), preferred over an OpenCL CPU device and the reference.
 */
public final class CpuBackendProvider implements MoeBackendProvider {
    /** The provider's name. */
    public static final String NAME = "cpu";

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public int priority() {
        return 200;
    }

    @Override
    public Availability availability() {
        try {
            return Availability.yes(CpuBackend.describe(CpuBackend.defaultThreads()));
        } catch (RuntimeException | LinkageError e) {
            return Availability.no("the CPU backend cannot start: " + e);
        }
    }

    @Override
    public MoeBackend open() {
        return new CpuBackend(CpuBackend.defaultThreads());
    }
}

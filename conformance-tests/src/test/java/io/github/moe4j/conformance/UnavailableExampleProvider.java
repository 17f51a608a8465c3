package io.github.moe4j.conformance;

import io.github.moe4j.api.Availability;
import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeBackendException;
import io.github.moe4j.api.MoeBackendProvider;

/**
 * A provider that is never available, registered in this module's test resources: it stands for a
 * GPU backend on a machine without the device, so that the skip path (reason printed, container or
 * dynamic test skipped) runs in every build.
 */
public final class UnavailableExampleProvider implements MoeBackendProvider {
    /** The provider's name. */
    public static final String NAME = "unavailable-example";

    /** The reason it gives. */
    public static final String REASON = "no device: this test provider stands for a GPU backend on a machine without one";

    /** For {@link java.util.ServiceLoader}. */
    public UnavailableExampleProvider() {}

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
        return Availability.no(REASON);
    }

    @Override
    public MoeBackend open() {
        throw new MoeBackendException("backend '" + NAME + "' is not available: " + REASON);
    }
}

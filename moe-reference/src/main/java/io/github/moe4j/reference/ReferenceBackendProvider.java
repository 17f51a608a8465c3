package io.github.moe4j.reference;

import io.github.moe4j.api.Availability;
import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeBackendProvider;

/** Registers the reference with {@link java.util.ServiceLoader}; always available, lowest priority. */
public final class ReferenceBackendProvider implements MoeBackendProvider {
    /** The reference backend's name. */
    public static final String NAME = "reference";

    /** For {@link java.util.ServiceLoader}. */
    public ReferenceBackendProvider() {}

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public int priority() {
        return 0;
    }

    @Override
    public Availability availability() {
        return Availability.yes(ReferenceBackend.INSTANCE.device());
    }

    @Override
    public MoeBackend open() {
        return ReferenceBackend.INSTANCE;
    }
}

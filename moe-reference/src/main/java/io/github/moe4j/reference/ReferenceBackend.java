package io.github.moe4j.reference;

import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Support;

/** The reference as a backend: every configuration is supported; it runs on the Java heap, one thread. */
public final class ReferenceBackend implements MoeBackend {
    /** The one instance; it holds no resources. */
    public static final ReferenceBackend INSTANCE = new ReferenceBackend();

    private ReferenceBackend() {}

    @Override
    public String name() {
        return ReferenceBackendProvider.NAME;
    }

    @Override
    public String device() {
        return "Java " + System.getProperty("java.version") + ", scalar double precision, one thread";
    }

    @Override
    public Support supports(MoeConfig config) {
        return Support.YES;
    }

    @Override
    public MoeLayer createLayer(MoeConfig config, MoeWeights weights) {
        return new ReferenceLayer(config, weights);
    }

    @Override
    public void close() {
        // nothing to release
    }
}

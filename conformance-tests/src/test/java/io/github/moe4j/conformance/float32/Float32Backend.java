package io.github.moe4j.conformance.float32;

import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Support;

/** A float32 forward pass in plain Java ({@link Float32Layer}): a stand-in for a GPU backend's arithmetic. */
public final class Float32Backend implements MoeBackend {
    @Override
    public String name() {
        return Float32BackendProvider.NAME;
    }

    @Override
    public String device() {
        return "Java, float32 forward arithmetic, reference backward (a test stand-in for a GPU backend)";
    }

    @Override
    public Support supports(MoeConfig config) {
        return Support.YES;
    }

    @Override
    public MoeLayer createLayer(MoeConfig config, MoeWeights weights) {
        return new Float32Layer(config, weights);
    }

    @Override
    public void close() {
        // nothing to release
    }
}

package io.github.moe4j.conformance;

import io.github.moe4j.api.ExpertChoiceRouterConfig;
import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Support;
import io.github.moe4j.reference.ReferenceBackend;

/** The reference, declaring expert choice unsupported: the suite must count it as unsupported, with the reason, and nothing else. */
public final class PartialBackend implements MoeBackend {
    /** The reason it gives. */
    public static final String REASON = "expert choice is not implemented in this test backend";

    @Override
    public String name() {
        return "partial-test";
    }

    @Override
    public String device() {
        return "the reference without expert choice";
    }

    @Override
    public Support supports(MoeConfig config) {
        return config.router() instanceof ExpertChoiceRouterConfig ? Support.no(REASON) : Support.YES;
    }

    @Override
    public MoeLayer createLayer(MoeConfig config, MoeWeights weights) {
        if (!supports(config).supported()) {
            throw new IllegalArgumentException(REASON);
        }
        return ReferenceBackend.INSTANCE.createLayer(config, weights);
    }

    @Override
    public void close() {
        // nothing to release
    }
}

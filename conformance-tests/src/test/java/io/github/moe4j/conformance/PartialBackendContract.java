package io.github.moe4j.conformance;

import io.github.moe4j.api.MoeBackend;

/** The routing contract against {@link PartialBackend}; run by {@link CoverageTest}. */
public class PartialBackendContract implements RoutingContract {
    @Override
    public MoeBackend backend() {
        return new PartialBackend();
    }

    @Override
    public int maxTries() {
        return 100;
    }
}

package io.github.moe4j.conformance;

import io.github.moe4j.api.MoeBackend;

/** The whole contract against {@link ForwardOnlyBackend}; run by {@link ForwardOnlyBackendTest}. */
public class ForwardOnlyBackendContract implements MoeBackendContract {
    @Override
    public MoeBackend backend() {
        return new ForwardOnlyBackend();
    }

    @Override
    public int maxTries() {
        return 20;
    }
}

package io.github.moe4j.conformance;

import io.github.moe4j.api.MoeBackend;

/** The contract against {@link UnavailableExampleProvider}: its container must be skipped with the reason. */
public class UnavailableBackendContract implements MoeBackendContract {
    @Override
    public MoeBackend backend() {
        return MoeBackendContract.forProvider(UnavailableExampleProvider.NAME);
    }
}

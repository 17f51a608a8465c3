package io.github.moe4j.conformance;

import io.github.moe4j.api.MoeBackend;

class ReferenceConformanceTest implements MoeBackendContract {
    @Override
    public MoeBackend backend() {
        return MoeBackendContract.forProvider("reference");
    }
}

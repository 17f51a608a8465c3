package io.github.moe4j.conformance.certified;

import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.conformance.MoeBackendContract;

class ReferenceConformanceTest implements MoeBackendContract {
    @Override
    public MoeBackend backend() {
        return MoeBackendContract.forProvider("reference");
    }
}

package io.github.moe4j.opencl;

import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.conformance.MoeBackendContract;

/**
 * Certifies the OpenCL backend with the whole conformance suite (CERTIFY.md): routing, forward,
 * backward, invariants, robustness and the golden cases against the reference, at float32's
 * tolerances. Where no OpenCL platform exists the provider says so and the suite reports the class
 * as skipped with that reason.
 */
class OpenClConformanceTest implements MoeBackendContract {
    @Override
    public MoeBackend backend() {
        return MoeBackendContract.forProvider(OpenClBackendProvider.NAME);
    }
}

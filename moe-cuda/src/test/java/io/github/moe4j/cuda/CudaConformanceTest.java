package io.github.moe4j.cuda;

import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.conformance.MoeBackendContract;

/**
 * The whole conformance suite against the CUDA backend on a real device, through its provider. Where
 * CUDA is unavailable (no driver, no device, compute capability below 7.5) the suite skips the
 * container and prints the provider's reason. Passing this on a GPU is what certifies the backend.
 */
class CudaConformanceTest implements MoeBackendContract {
    @Override
    public MoeBackend backend() {
        return MoeBackendContract.forProvider(CudaBackendProvider.NAME);
    }
}

package io.github.moe4j.cuda;

import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.conformance.BackendUnavailableException;
import io.github.moe4j.conformance.MoeBackendContract;

/**
 * The whole conformance suite against the CUDA backend's kernels and orchestration on an OpenCL
 * device (PoCL in CI) through the JOCL test runtime: everything but {@link CudaDriverRuntime}. Without
 * an OpenCL platform the container is skipped with the reason (a failure in CI, where
 * {@code moe4j.requireOpenCl} is true). Not a GPU certification: see {@link CudaConformanceTest}.
 */
class PoclConformanceTest implements MoeBackendContract {
    @Override
    public MoeBackend backend() {
        String reason = OpenClRuntime.unavailableReason();
        if (reason != null) {
            if (Boolean.getBoolean("moe4j.requireOpenCl")) {
                throw new AssertionError("OpenCL is required here (moe4j.requireOpenCl=true) but " + reason);
            }
            throw new BackendUnavailableException("cuda (on the JOCL test runtime)", reason);
        }
        return new CudaBackend(OpenClRuntime.open());
    }
}

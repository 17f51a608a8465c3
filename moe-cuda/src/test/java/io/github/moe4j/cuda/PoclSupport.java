package io.github.moe4j.cuda;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Opens the CUDA backend on the JOCL test runtime. Without an OpenCL platform the caller's tests
 * are skipped with the reason, except when {@code moe4j.requireOpenCl} is true (set from the
 * {@code CI} environment variable in moe-cuda's pom): in CI a missing PoCL is a failure, not a skip.
 */
final class PoclSupport {
    private PoclSupport() {}

    /**
     * The backend, or null when OpenCL is missing (then {@link #assumeOpen} skips each test with the
     * reason, so every skipped test shows in the report rather than an aborted, uncounted class).
     */
    static CudaBackend openBackend() {
        String reason = OpenClRuntime.unavailableReason();
        if (reason != null && Boolean.getBoolean("moe4j.requireOpenCl")) {
            throw new AssertionError("OpenCL is required here (moe4j.requireOpenCl=true) but " + reason);
        }
        return reason == null ? new CudaBackend(OpenClRuntime.open()) : null;
    }

    /** Skips the current test, with the reason, when {@code backend} is null. */
    static void assumeOpen(CudaBackend backend) {
        assumeTrue(backend != null, () -> "skipped: " + OpenClRuntime.unavailableReason());
    }
}

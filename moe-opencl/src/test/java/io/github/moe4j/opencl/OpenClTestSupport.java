package io.github.moe4j.opencl;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.github.moe4j.api.Availability;

/**
 * One backend for the whole test JVM (the probe compiles the kernels once), and the visible skip
 * when this machine has no OpenCL: the reason is printed and becomes the JUnit skip message.
 */
final class OpenClTestSupport {
    private static OpenClBackend backend;
    private static boolean printed;

    private OpenClTestSupport() {}

    /** Skips the calling test, saying why, unless the OpenCL backend is available. */
    static synchronized void assumeAvailable() {
        Availability a = new OpenClBackendProvider().availability();
        if (!printed) {
            System.out.println(a.available() ? "[moe-opencl tests] OpenCL device: " + a.reason()
                    : "[moe-opencl tests] SKIPPING device tests: " + a.reason());
            printed = true;
        }
        assumeTrue(a.available(), () -> "OpenCL backend unavailable: " + a.reason());
    }

    /** The shared backend (opened on first use; the JVM's exit releases it). */
    static synchronized OpenClBackend backend() {
        assumeAvailable();
        if (backend == null) {
            backend = (OpenClBackend) new OpenClBackendProvider().open();
        }
        return backend;
    }
}

package io.github.moe4j.cuda;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.github.moe4j.api.Availability;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.TestInstance;

/**
 * The CUDA backend on a real GPU, opened once per test class through its provider: every test is
 * skipped with the provider's reason where CUDA is not available.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class CudaGpuBackendTest {
    private Availability availability;
    /** The backend under test; null where CUDA is not available. */
    CudaBackend backend;

    @BeforeAll
    void open() {
        availability = new CudaBackendProvider().availability();
        if (availability.available()) {
            backend = (CudaBackend) new CudaBackendProvider().open();
        }
    }

    @BeforeEach
    void requireCuda() {
        assumeTrue(availability.available(), () -> "skipped: no CUDA here: " + availability.reason());
    }

    @AfterAll
    void close() {
        if (backend != null) {
            backend.close();
        }
    }
}

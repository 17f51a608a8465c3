package io.github.moe4j.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.TestInstance;

/**
 * The CUDA backend on the JOCL test runtime (PoCL), opened once per test class: every test is
 * skipped with the reason where there is no OpenCL, and closing checks that no device allocation
 * is left.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class PoclBackendTest {
    /** The backend under test; null where OpenCL is missing. */
    CudaBackend backend;

    @BeforeAll
    void open() {
        backend = PoclSupport.openBackend();
    }

    @BeforeEach
    void requireOpenCl() {
        PoclSupport.assumeOpen(backend);
    }

    /** Whether closing asserts that every device allocation was released. */
    boolean checksAllocationsOnClose() {
        return true;
    }

    @AfterAll
    void close() {
        if (backend != null) {
            backend.close();
            if (checksAllocationsOnClose()) {
                assertEquals(0, backend.runtime().liveAllocations(), "device allocations left after close");
            }
        }
    }
}

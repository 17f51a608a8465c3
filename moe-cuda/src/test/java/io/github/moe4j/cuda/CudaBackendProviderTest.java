package io.github.moe4j.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import io.github.moe4j.api.Availability;
import io.github.moe4j.api.MoeBackendException;
import io.github.moe4j.api.MoeBackendProvider;
import io.github.moe4j.api.MoeBackends;
import jcuda.CudaException;
import org.junit.jupiter.api.Test;

/** The provider is found, and its availability probe reports instead of crashing. */
class CudaBackendProviderTest {

    /** ServiceLoader finds "cuda" at priority 300. */
    @Test
    void serviceLoaderFindsTheCudaProvider() {
        MoeBackendProvider p = MoeBackends.providers().stream().filter(x -> x.name().equals("cuda")).findFirst().orElseThrow();
        assertTrue(p instanceof CudaBackendProvider);
        assertTrue(p.priority() < 0, "while forward-only and uncertified the cuda backend ranks below the reference, got " + p.priority());
    }

    /**
     * Without an NVIDIA driver (as on this project's machines and CI), availability says which
     * library is missing, twice in a row (the second touch of JCuda classes gives
     * NoClassDefFoundError, which must be handled too), and open() throws MoeBackendException with
     * the reason. Skipped, with the reason, on a machine where CUDA is available.
     */
    @Test
    void withoutADriverAvailabilityNamesLibcudaAndOpenThrows() {
        Availability first = new CudaBackendProvider().availability();
        assumeFalse(first.available(), () -> "skipped: CUDA is available here (" + first.reason() + "); the no-driver path cannot be tested");
        assertTrue(first.reason().startsWith("unavailable: "), first.reason());
        assertTrue(first.reason().contains("libcuda.so.1"), first.reason());
        Availability uncached = CudaProbe.probe();
        assertFalse(uncached.available());
        assertTrue(uncached.reason().contains("libcuda.so.1"), "second probe (NoClassDefFoundError path): " + uncached.reason());
        MoeBackendException e = assertThrows(MoeBackendException.class, () -> new CudaBackendProvider().open());
        assertTrue(e.getMessage().contains("libcuda.so.1"), e.getMessage());
        assertTrue(MoeBackends.describe().stream().anyMatch(d -> d.name().equals("cuda") && !d.availability().available()));
    }

    /** The failure descriptions name the missing library, the CUDA error, or the exception. */
    @Test
    void describeNamesTheMissingLibraryOrTheCudaError() {
        UnsatisfiedLinkError missing = new UnsatisfiedLinkError("Error while loading native library \"JCudaDriver-12.0.0-linux-x86_64\"");
        missing.initCause(new UnsatisfiedLinkError("/tmp/libJCudaDriver-12.0.0-linux-x86_64.so: libcuda.so.1: cannot open shared object file: No such file or directory"));
        assertEquals("libcuda.so.1 not found (cannot open shared object file)", CudaProbe.describe(missing));
        UnsatisfiedLinkError cublas = new UnsatisfiedLinkError("/tmp/libJCublas2-12.0.0-linux-x86_64.so: libcublas.so.12: cannot open shared object file");
        assertEquals("libcublas.so.12 not found (cannot open shared object file)", CudaProbe.describe(cublas));
        assertEquals("CUDA_ERROR_NO_DEVICE", CudaProbe.describe(new CudaException("CUDA_ERROR_NO_DEVICE")));
        assertEquals("cudaErrorInsufficientDriver", CudaProbe.describe(new CudaException("cudaErrorInsufficientDriver")));
        assertEquals("NoClassDefFoundError: Could not initialize class jcuda.driver.JCudaDriver",
                CudaProbe.describe(new NoClassDefFoundError("Could not initialize class jcuda.driver.JCudaDriver")));
    }
}

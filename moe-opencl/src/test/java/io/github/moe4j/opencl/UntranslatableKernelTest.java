package io.github.moe4j.opencl;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Availability;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A kernel Aparapi cannot translate, or one the OpenCL compiler rejects, makes the backend refuse
 * at start (unavailable, with the reason), where Aparapi alone would run it in Java threads.
 */
class UntranslatableKernelTest {

    /** A switch statement: CompileFailedException from the translator → unavailable. */
    @Test
    void untranslatableKernelMakesTheBackendUnavailable() {
        OpenClTestSupport.assumeAvailable();
        OpenClDeviceProbe.Result r = OpenClDeviceProbe.probe(List.of(MoeLayerKernel::new, UntranslatableKernels.SwitchKernel::new));
        Availability a = r.availability();
        System.out.println("[moe-opencl tests] probe with a switch kernel: " + a);
        assertFalse(a.available());
        assertNull(r.device());
        assertTrue(a.reason().contains("SwitchKernel") && a.reason().contains("CompileFailedException")
                && a.reason().contains("Java threads"), a.reason());
    }

    /** atomicAdd on local memory: the OpenCL build fails → unavailable, not a Java-thread run. */
    @Test
    void kernelTheDriverCannotBuildMakesTheBackendUnavailable() {
        OpenClTestSupport.assumeAvailable();
        Availability a = OpenClDeviceProbe.probe(List.of(UntranslatableKernels.LocalAtomicKernel::new)).availability();
        System.out.println("[moe-opencl tests] probe with a local-atomic kernel: " + a);
        assertFalse(a.available());
        assertTrue(a.reason().contains("LocalAtomicKernel"), a.reason());
    }

    /** The backend's own kernels pass the same probe. */
    @Test
    void theBackendsKernelsCompile() {
        OpenClTestSupport.assumeAvailable();
        assertTrue(OpenClDeviceProbe.probe(OpenClDeviceProbe.KERNELS).availability().available());
    }
}

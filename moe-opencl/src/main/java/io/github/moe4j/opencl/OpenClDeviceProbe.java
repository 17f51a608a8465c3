package io.github.moe4j.opencl;

import com.aparapi.Kernel;
import com.aparapi.device.Device;
import com.aparapi.device.OpenCLDevice;
import com.aparapi.exception.CompileFailedException;
import com.aparapi.internal.opencl.OpenCLPlatform;
import io.github.moe4j.api.Availability;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * Finds the OpenCL device the backend runs on and proves that every kernel class compiles for it,
 * without ever throwing: each failure (no OpenCL library, no platform, no device, a kernel Aparapi
 * cannot translate or the driver cannot build) becomes an unavailable {@link Result} with a reason
 * a user can act on. Aparapi would otherwise run such a kernel in Java threads, silently
 * (research java-gpu.md §2.3); {@code Kernel.compile(device)} throws instead, so it is the gate.
 *
 * <p>Device choice: the first GPU, else the first accelerator, else the first CPU device, in
 * Aparapi's listing order. The chosen device is switched to {@code setSharedMemory(false)}
 * (buffers copied, not host-mapped), so a missing {@code put}/{@code get} fails on a CPU device
 * too instead of being hidden by shared memory.
 */
final class OpenClDeviceProbe {
    static final String INSTALL_HINT = "Hint: apt-get install pocl-opencl-icd ocl-icd-libopencl1";

    /** The backend's kernel classes, each compiled at start. */
    static final List<Supplier<? extends Kernel>> KERNELS = List.of(MoeLayerKernel::new);

    private static Result cached;

    private OpenClDeviceProbe() {}

    /**
     * What the probe found.
     *
     * @param device      the device, or null when unavailable
     * @param description platform and device, e.g. "pthread-skylake-avx512 (Portable Computing Language, OpenCL 3.0 PoCL 3.1)"
     * @param gpu         whether the device is a GPU or an accelerator
     * @param failure     why it is unavailable, or null
     */
    record Result(OpenCLDevice device, String description, boolean gpu, String failure) {
        Availability availability() {
            return failure == null ? Availability.yes(description) : Availability.no(failure);
        }
    }

    /** The probe of this JVM, with the backend's kernels; done once (compiling takes seconds). */
    static synchronized Result get() {
        if (cached == null) {
            cached = probe(KERNELS);
        }
        return cached;
    }

    /** Probes and compiles {@code kernels}; never throws. */
    static Result probe(List<Supplier<? extends Kernel>> kernels) {
        OpenCLDevice device;
        String description;
        try {
            device = choose();
            if (device == null) {
                return new Result(null, "", false, noDeviceReason());
            }
            description = describe(device);
        } catch (Throwable t) {
            return new Result(null, "", false, "OpenCL could not be loaded: " + firstLine(t) + " (" + INSTALL_HINT + ")");
        }
        if (device.getMaxWorkGroupSize() < MoeLayerKernel.LOCAL_SIZE) {
            return new Result(null, description, false, "OpenCL device " + description + " allows work-groups of "
                    + device.getMaxWorkGroupSize() + " work-items; the kernels need " + MoeLayerKernel.LOCAL_SIZE);
        }
        device.setSharedMemory(false);
        boolean gpu = device.getType() == Device.TYPE.GPU || device.getType() == Device.TYPE.ACC;
        for (Supplier<? extends Kernel> s : kernels) {
            String failure = compile(s, device, description);
            if (failure != null) {
                return new Result(null, description, gpu, failure);
            }
        }
        return new Result(device, description, gpu, null);
    }

    private static String compile(Supplier<? extends Kernel> supplier, OpenCLDevice device, String description) {
        Kernel kernel = null;
        String name = "?";
        try {
            kernel = supplier.get();
            name = kernel.getClass().getSimpleName();
            kernel.setExplicit(true);
            kernel.compile(device);
        } catch (CompileFailedException e) {
            // not disposed: Aparapi 3.0.0's dispose() of a kernel that never launched frees
            // uninitialised memory and aborts the JVM; a failed probe leaks at most one context
            return "kernel " + name + " does not compile for OpenCL on " + description + ": " + firstLine(e)
                    + " (Aparapi would run it in Java threads; the backend refuses)";
        } catch (Throwable t) {
            return "kernel " + name + " failed to build on " + description + ": " + firstLine(t);
        }
        try {
            // one empty launch (the kernels' default fields do no work), so dispose() is safe and
            // the kernel is seen running in OpenCL
            KernelLaunches.execute(kernel, device, description, MoeLayerKernel.LOCAL_SIZE, MoeLayerKernel.LOCAL_SIZE, 1,
                    "the start-up check");
            kernel.dispose();
            return null;
        } catch (Throwable t) {
            return "kernel " + name + " does not run on " + description + ": " + firstLine(t);
        }
    }

    private static OpenCLDevice choose() {
        for (Device.TYPE type : new Device.TYPE[] {Device.TYPE.GPU, Device.TYPE.ACC, Device.TYPE.CPU}) {
            List<OpenCLDevice> devices = OpenCLDevice.listDevices(type);
            if (devices != null && !devices.isEmpty()) {
                return devices.get(0);
            }
        }
        return null;
    }

    private static String noDeviceReason() {
        List<String> platforms = new ArrayList<>();
        try {
            for (OpenCLPlatform p : new OpenCLPlatform().getOpenCLPlatforms()) {
                platforms.add(p.getName() + " " + p.getVersion());
            }
        } catch (Throwable ignored) {
            // reported as no platform below
        }
        if (platforms.isEmpty()) {
            return "no OpenCL platform found (" + INSTALL_HINT + ")";
        }
        return "OpenCL platform(s) " + platforms + " found but no GPU, accelerator or CPU device on them";
    }

    /** "device (platform, version)". */
    static String describe(OpenCLDevice device) {
        OpenCLPlatform p = device.getOpenCLPlatform();
        // PoCL's version string continues with its build options after a comma
        String version = p.getVersion().split(",")[0].replaceAll("\\s+", " ").trim();
        return device.getName().trim() + " (" + p.getName().trim() + ", " + version + ")";
    }

    static String firstLine(Throwable t) {
        String m = t.getMessage();
        if (m == null || m.isBlank()) {
            Throwable c = t.getCause();
            m = c != null && c.getMessage() != null ? c.getMessage() : "";
        }
        String line = m.strip().lines().findFirst().orElse("");
        return t.getClass().getSimpleName() + (line.isEmpty() ? "" : ": " + line);
    }
}

package io.github.moe4j.opencl;

import com.aparapi.Kernel;
import com.aparapi.Range;
import com.aparapi.device.Device;
import com.aparapi.device.OpenCLDevice;
import com.aparapi.internal.kernel.KernelManager;
import io.github.moe4j.api.MoeBackendException;
import java.util.List;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * Runs a kernel on the backend's OpenCL device and makes Aparapi's silent fallback loud: after
 * every launch it checks that the kernel ran in OpenCL ({@code isRunningCL()}) and that its class
 * has no failed device ({@code KernelPreferences#getFailedDevices()}); otherwise the launch is a
 * {@link MoeBackendException}, never a result (research java-gpu.md §2.3). Aparapi's own
 * "Device failed" warning, caught by a logging handler, goes into the message.
 */
final class KernelLaunches {
    private static final Logger APARAPI = Logger.getLogger("com.aparapi");
    private static volatile String lastWarning = "";

    static {
        APARAPI.addHandler(new Handler() {
            @Override
            public void publish(LogRecord record) {
                if (record.getLevel().intValue() >= Level.WARNING.intValue() && record.getMessage() != null
                        && !record.getMessage().contains("untested OpenCL platform")
                        && !record.getMessage().contains("unexpected Attribute")) {
                    lastWarning = record.getMessage().strip().lines().findFirst().orElse("");
                }
            }

            @Override
            public void flush() {
                // nothing buffered
            }

            @Override
            public void close() {
                // nothing held
            }
        });
    }

    private KernelLaunches() {}

    /**
     * {@code kernel.execute(range, passes)} on {@code device}, then the fallback check.
     *
     * @param what the operation, for messages
     * @throws MoeBackendException if the launch failed or did not run in OpenCL
     */
    static void execute(Kernel kernel, OpenCLDevice device, String description, int globalSize, int localSize, int passes,
                        String what) {
        lastWarning = "";
        try {
            kernel.execute(Range.create(device, globalSize, localSize), passes);
        } catch (Throwable t) {
            throw new MoeBackendException("OpenCL launch of " + what + " (" + kernel.getClass().getSimpleName() + ") failed on "
                    + description + ": " + OpenClDeviceProbe.firstLine(t), t);
        }
        requireRanInOpenCl(kernel, description, what);
    }

    /** Throws unless the last launch of {@code kernel} ran in OpenCL. */
    static void requireRanInOpenCl(Kernel kernel, String description, String what) {
        List<Device> failed = KernelManager.instance().getPreferences(kernel).getFailedDevices();
        if (!kernel.isRunningCL() || !failed.isEmpty()) {
            throw new MoeBackendException("OpenCL launch of " + what + " (" + kernel.getClass().getSimpleName()
                    + ") did not run on " + description + ": Aparapi fell back to Java threads"
                    + (failed.isEmpty() ? "" : " after marking " + failed.size() + " device(s) failed")
                    + (lastWarning.isEmpty() ? "" : " (" + lastWarning + ")")
                    + "; a result computed that way is never returned as OpenCL's");
        }
    }
}

package io.github.moe4j.cuda;

import io.github.moe4j.api.Availability;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.JCudaDriver;

/**
 * Whether the CUDA backend can run here, found without ever crashing the JVM: each step that
 * touches JCuda runs inside {@code catch (Throwable)}, because a missing native library surfaces as
 * {@link UnsatisfiedLinkError} on the first touch of a JCuda class and as
 * {@link NoClassDefFoundError} on every later one. Steps, in order: load the driver API
 * ({@code libcuda.so.1}), {@code cuInit}, count devices, compute capability of device 0
 * (at least 7.5, what the shipped {@code compute_75} PTX needs), and whether cuBLAS
 * ({@code libcublas.so.12}) loads (optional: without it GEMMs use moe4j's own kernel).
 *
 * <p>The result is computed once per JVM; this class is only loaded by the provider's
 * {@code availability()}.
 */
final class CudaProbe {
    /** The lowest compute capability the shipped PTX (compute_75) runs on, as major*10 + minor. */
    static final int MIN_COMPUTE_CAPABILITY = 75;

    private static final Pattern MISSING_LIBRARY = Pattern.compile("(lib[A-Za-z0-9_.+-]*\\.so[0-9.]*): cannot open shared object file");
    private static final Pattern CUDA_ERROR = Pattern.compile("\\b(CUDA_ERROR_[A-Z_]+|cudaError[A-Za-z]+|CUBLAS_STATUS_[A-Z_]+)\\b");

    private CudaProbe() {}

    private static final class Holder {
        static final Availability RESULT = probeSafely();
    }

    /** The cached result of {@link #probe()}. */
    static Availability availability() {
        return Holder.RESULT;
    }

    private static Availability probeSafely() {
        try {
            return probe();
        } catch (Throwable t) {
            return Availability.no("unavailable: the CUDA probe failed unexpectedly: " + describe(t));
        }
    }

    /** Runs the probe (uncached). */
    static Availability probe() {
        try {
            JCudaDriver.setExceptionsEnabled(true);
        } catch (Throwable t) {
            return Availability.no("unavailable: cannot load the CUDA driver API: " + describe(t)
                    + ". Hint: install the NVIDIA driver (it provides libcuda.so.1) on a machine with an NVIDIA GPU");
        }
        try {
            JCudaDriver.cuInit(0);
        } catch (Throwable t) {
            return Availability.no("unavailable: cuInit failed: " + describe(t));
        }
        int[] count = new int[1];
        try {
            JCudaDriver.cuDeviceGetCount(count);
        } catch (Throwable t) {
            return Availability.no("unavailable: cuDeviceGetCount failed: " + describe(t));
        }
        if (count[0] < 1) {
            return Availability.no("unavailable: the CUDA driver reports no device (cuDeviceGetCount = 0)");
        }
        String device;
        try {
            CUdevice dev = new CUdevice();
            JCudaDriver.cuDeviceGet(dev, 0);
            byte[] name = new byte[256];
            JCudaDriver.cuDeviceGetName(name, name.length, dev);
            int[] major = new int[1];
            int[] minor = new int[1];
            JCudaDriver.cuDeviceGetAttribute(major, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
            JCudaDriver.cuDeviceGetAttribute(minor, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
            int n = 0;
            while (n < name.length && name[n] != 0) {
                n++;
            }
            device = new String(name, 0, n, java.nio.charset.StandardCharsets.UTF_8) + " (sm_" + major[0] + minor[0] + ")";
            if (major[0] * 10 + minor[0] < MIN_COMPUTE_CAPABILITY) {
                return Availability.no("unavailable: device 0 " + device + " has compute capability " + major[0] + "." + minor[0]
                        + "; moe4j's PTX needs 7.5 (Turing) or newer");
            }
        } catch (Throwable t) {
            return Availability.no("unavailable: querying device 0 failed: " + describe(t));
        }
        String gemm;
        try {
            jcuda.jcublas.JCublas2.setExceptionsEnabled(true);
            gemm = "cuBLAS";
        } catch (Throwable t) {
            gemm = "moe4j's own GEMM kernel (cuBLAS unavailable: " + describe(t) + ")";
        }
        return Availability.yes(device + ", GEMM: " + gemm);
    }

    /**
     * A one-line description of a JCuda failure: the missing native library
     * ({@code "libcuda.so.1 not found (cannot open shared object file)"}), the CUDA or cuBLAS error
     * name, or the exception's class and first line.
     */
    static String describe(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            String m = String.valueOf(c.getMessage());
            Matcher lib = MISSING_LIBRARY.matcher(m);
            if (lib.find()) {
                return lib.group(1) + " not found (cannot open shared object file)";
            }
        }
        for (Throwable c = t; c != null; c = c.getCause()) {
            Matcher err = CUDA_ERROR.matcher(String.valueOf(c.getMessage()));
            if (err.find()) {
                return err.group(1);
            }
        }
        String m = t.getMessage() == null ? "" : t.getMessage().lines().findFirst().orElse("");
        return t.getClass().getSimpleName() + (m.isEmpty() ? "" : ": " + m);
    }
}

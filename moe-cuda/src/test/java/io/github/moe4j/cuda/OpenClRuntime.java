package io.github.moe4j.cuda;

import io.github.moe4j.api.MoeBackendException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.jocl.CL;
import org.jocl.CLException;
import org.jocl.Pointer;
import org.jocl.Sizeof;
import org.jocl.cl_command_queue;
import org.jocl.cl_context;
import org.jocl.cl_device_id;
import org.jocl.cl_kernel;
import org.jocl.cl_mem;
import org.jocl.cl_platform_id;
import org.jocl.cl_program;

/**
 * A {@link DeviceRuntime} on OpenCL through JOCL (test scope): it builds the CUDA backend's very
 * kernel sources ({@code kernels/*.cu} with {@code moe_portable.h} prepended, {@code -cl-std=CL1.2},
 * no fast-math options) and runs GEMMs with the portable {@code gemm_tiled} kernel. This is how the
 * whole CUDA backend except {@link CudaDriverRuntime} runs on PoCL in CI.
 */
final class OpenClRuntime implements DeviceRuntime {
    private final cl_context context;
    private final cl_command_queue queue;
    private final String deviceName;
    private final List<cl_program> programs = new ArrayList<>();
    private final Map<Kernel, cl_kernel> kernels = new EnumMap<>(Kernel.class);
    private final Set<ClBuffer> live = Collections.newSetFromMap(new IdentityHashMap<>());
    private boolean closed;

    /** A cl_mem and its size. */
    private record ClBuffer(cl_mem mem, long bytes) implements DeviceBuffer {}

    private OpenClRuntime(cl_context context, cl_command_queue queue, String deviceName) {
        this.context = context;
        this.queue = queue;
        this.deviceName = deviceName;
    }

    /** Why OpenCL cannot be used here, or null if a platform with a device exists. */
    static String unavailableReason() {
        try {
            CL.setExceptionsEnabled(true);
            int[] n = new int[1];
            CL.clGetPlatformIDs(0, null, n);
            return n[0] == 0 ? "no OpenCL platform (install pocl-opencl-icd)" : null;
        } catch (Throwable t) {
            return "no OpenCL platform: " + t + " (install pocl-opencl-icd and ocl-icd-libopencl1)";
        }
    }

    /** The first device of the first platform, with every kernel file built. */
    static OpenClRuntime open() {
        CL.setExceptionsEnabled(true);
        cl_platform_id[] platforms = new cl_platform_id[1];
        CL.clGetPlatformIDs(1, platforms, null);
        cl_device_id[] devices = new cl_device_id[1];
        CL.clGetDeviceIDs(platforms[0], CL.CL_DEVICE_TYPE_ALL, 1, devices, null);
        String name = info(devices[0], CL.CL_DEVICE_NAME) + " (" + info(devices[0], CL.CL_DEVICE_VERSION) + ")";
        cl_context ctx = CL.clCreateContext(null, 1, devices, null, null, null);
        @SuppressWarnings("deprecation")
        cl_command_queue q = CL.clCreateCommandQueue(ctx, devices[0], 0, null);
        OpenClRuntime rt = new OpenClRuntime(ctx, q, "OpenCL " + name + " [test runtime]");
        try {
            for (String file : KernelSources.files()) {
                cl_program p = CL.clCreateProgramWithSource(ctx, 1, new String[] {KernelSources.openClSource(file)}, null, null);
                rt.programs.add(p);
                try {
                    CL.clBuildProgram(p, 1, devices, "-cl-std=CL1.2", null, null);
                } catch (CLException e) {
                    throw new MoeBackendException("OpenCL build of kernels/" + file + ".cu failed: " + e.getMessage() + "\n"
                            + buildLog(p, devices[0]), e);
                }
                for (Kernel k : Kernel.values()) {
                    if (k.file().equals(file)) {
                        rt.kernels.put(k, CL.clCreateKernel(p, k.entryPoint(), null));
                    }
                }
            }
            return rt;
        } catch (RuntimeException e) {
            rt.close();
            throw e;
        }
    }

    private static String info(cl_device_id d, int param) {
        long[] size = new long[1];
        CL.clGetDeviceInfo(d, param, 0, null, size);
        byte[] buf = new byte[(int) size[0]];
        CL.clGetDeviceInfo(d, param, buf.length, Pointer.to(buf), null);
        return new String(buf, 0, Math.max(0, buf.length - 1), StandardCharsets.UTF_8).trim();
    }

    private static String buildLog(cl_program p, cl_device_id d) {
        long[] size = new long[1];
        CL.clGetProgramBuildInfo(p, d, CL.CL_PROGRAM_BUILD_LOG, 0, null, size);
        byte[] buf = new byte[(int) size[0]];
        CL.clGetProgramBuildInfo(p, d, CL.CL_PROGRAM_BUILD_LOG, buf.length, Pointer.to(buf), null);
        return new String(buf, StandardCharsets.UTF_8);
    }

    private void check() {
        if (closed) {
            throw new IllegalStateException("the OpenCL runtime is closed");
        }
    }

    private <T> T call(String op, java.util.function.Supplier<T> r) {
        check();
        try {
            return r.get();
        } catch (CLException e) {
            throw new MoeBackendException("OpenCL " + op + " failed on " + deviceName + ": " + CL.stringFor_errorCode(e.getStatus()), e);
        }
    }

    private ClBuffer own(DeviceBuffer b) {
        if (!(b instanceof ClBuffer c) || !live.contains(c)) {
            throw new IllegalArgumentException("buffer " + b + " is not a live buffer of this OpenCL runtime");
        }
        return c;
    }

    @Override
    public String device() {
        return deviceName;
    }

    @Override
    public String gemmImplementation() {
        return "moe4j gemm_tiled kernel";
    }

    @Override
    public DeviceBuffer allocate(long bytes) {
        long size = Math.max(4, bytes);
        cl_mem m = call("clCreateBuffer(" + size + " bytes)", () -> CL.clCreateBuffer(context, CL.CL_MEM_READ_WRITE, size, null, null));
        ClBuffer b = new ClBuffer(m, size);
        live.add(b);
        return b;
    }

    @Override
    public void free(DeviceBuffer buffer) {
        ClBuffer b = own(buffer);
        live.remove(b);
        call("clReleaseMemObject", () -> CL.clReleaseMemObject(b.mem()));
    }

    @Override
    public void copyIn(float[] src, DeviceBuffer dst) {
        ClBuffer b = own(dst);
        call("clEnqueueWriteBuffer", () -> CL.clEnqueueWriteBuffer(queue, b.mem(), true, 0, (long) src.length * Sizeof.cl_float,
                Pointer.to(src), 0, null, null));
    }

    @Override
    public void copyIn(int[] src, DeviceBuffer dst) {
        ClBuffer b = own(dst);
        call("clEnqueueWriteBuffer", () -> CL.clEnqueueWriteBuffer(queue, b.mem(), true, 0, (long) src.length * Sizeof.cl_int,
                Pointer.to(src), 0, null, null));
    }

    @Override
    public void copyOut(DeviceBuffer src, float[] dst) {
        ClBuffer b = own(src);
        call("clEnqueueReadBuffer", () -> CL.clEnqueueReadBuffer(queue, b.mem(), true, 0, (long) dst.length * Sizeof.cl_float,
                Pointer.to(dst), 0, null, null));
    }

    @Override
    public void copyOut(DeviceBuffer src, int[] dst) {
        ClBuffer b = own(src);
        call("clEnqueueReadBuffer", () -> CL.clEnqueueReadBuffer(queue, b.mem(), true, 0, (long) dst.length * Sizeof.cl_int,
                Pointer.to(dst), 0, null, null));
    }

    @Override
    public void launch(Kernel kernel, Grid grid, Object... args) {
        check();
        if (grid.isEmpty()) {
            return;
        }
        cl_kernel k = kernels.get(kernel);
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            int index = i;
            if (a instanceof DeviceBuffer b) {
                cl_mem m = own(b).mem();
                call("clSetKernelArg", () -> CL.clSetKernelArg(k, index, Sizeof.cl_mem, Pointer.to(m)));
            } else if (a instanceof Integer v) {
                call("clSetKernelArg", () -> CL.clSetKernelArg(k, index, Sizeof.cl_int, Pointer.to(new int[] {v})));
            } else if (a instanceof Float v) {
                call("clSetKernelArg", () -> CL.clSetKernelArg(k, index, Sizeof.cl_float, Pointer.to(new float[] {v})));
            } else {
                throw new IllegalArgumentException("kernel argument " + i + " of " + kernel.entryPoint() + " is a " + a);
            }
        }
        long[] global = grid.globalY() == 1 && grid.localY() == 1 ? new long[] {grid.globalX()} : new long[] {grid.globalX(), grid.globalY()};
        long[] local = global.length == 1 ? new long[] {grid.localX()} : new long[] {grid.localX(), grid.localY()};
        call("clEnqueueNDRangeKernel " + kernel.entryPoint(), () -> CL.clEnqueueNDRangeKernel(queue, k, global.length, null, global, local,
                0, null, null));
    }

    @Override
    public void gemm(GemmOps ops, int m, int n, int k, DeviceBuffer a, long aOffset, DeviceBuffer b, long bOffset, DeviceBuffer c,
                     long cOffset) {
        if (m == 0 || n == 0 || (k == 0 && ops.accumulate())) {
            return;
        }
        DeviceRuntime.portableGemm(this, ops, m, n, k, a, aOffset, b, bOffset, c, cOffset);
    }

    @Override
    public void gemmStridedBatched(GemmOps ops, int m, int n, int k, DeviceBuffer a, long aOffset, long strideA, DeviceBuffer b,
                                   long bOffset, long strideB, DeviceBuffer c, long cOffset, long strideC, int batch) {
        if (batch == 0 || m == 0 || n == 0 || (k == 0 && ops.accumulate())) {
            return;
        }
        DeviceRuntime.portableGemmStridedBatched(this, ops, m, n, k, a, aOffset, strideA, b, bOffset, strideB, c, cOffset, strideC,
                batch);
    }

    @Override
    public int liveAllocations() {
        return live.size();
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (ClBuffer b : live) {
            CL.clReleaseMemObject(b.mem());
        }
        live.clear();
        for (cl_kernel k : kernels.values()) {
            CL.clReleaseKernel(k);
        }
        for (cl_program p : programs) {
            CL.clReleaseProgram(p);
        }
        CL.clReleaseCommandQueue(queue);
        CL.clReleaseContext(context);
    }
}

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
import jcuda.Pointer;
import jcuda.Sizeof;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUjit_option;
import jcuda.driver.CUmodule;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;
import jcuda.driver.JITOptions;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasHandle;
import jcuda.jcublas.cublasOperation;

/**
 * The {@link DeviceRuntime} users get: the JCuda driver API on the device's primary context, the
 * kernels from the shipped PTX ({@code compute_75}, loaded with {@code cuModuleLoadDataEx} through
 * JCuda's {@code cuModuleLoadDataJIT}, the JIT error log in the exception), GEMMs through cuBLAS
 * (JCublas2, with {@link CublasRowMajor}) or, when cuBLAS cannot be loaded, the portable
 * {@code gemm_tiled} kernel.
 *
 * <p>Never touched before {@link CudaProbe} found a usable device. Every call makes the context
 * current on the calling thread first (cuBLAS and the driver API use the thread's current context).
 * Not verified on a GPU: no GPU was available where it was written (see README-cuda.md).
 */
final class CudaDriverRuntime implements DeviceRuntime {
    private static final int JIT_LOG_BYTES = 16384;

    private final CUdevice device;
    private final CUcontext context;
    private final String deviceName;
    private final List<CUmodule> modules = new ArrayList<>();
    private final Map<Kernel, CUfunction> functions = new EnumMap<>(Kernel.class);
    private final Set<CudaBuffer> live = Collections.newSetFromMap(new IdentityHashMap<>());
    private cublasHandle cublas;
    private String gemmImplementation;
    private boolean closed;

    /** A device pointer and its size. */
    private record CudaBuffer(CUdeviceptr pointer, long bytes) implements DeviceBuffer {}

    private CudaDriverRuntime(CUdevice device, CUcontext context, String deviceName) {
        this.device = device;
        this.context = context;
        this.deviceName = deviceName;
    }

    /**
     * Opens device {@code ordinal}: retains its primary context, loads every PTX module, looks up every
     * kernel and creates a cuBLAS handle if cuBLAS loads. Releases what it took if any step fails.
     *
     * @throws MoeBackendException naming the failed step and the CUDA error (with the JIT log for PTX)
     */
    static CudaDriverRuntime open(int ordinal) {
        CudaDriverRuntime rt;
        try {
            JCudaDriver.setExceptionsEnabled(true);
            JCudaDriver.cuInit(0);
            CUdevice dev = new CUdevice();
            JCudaDriver.cuDeviceGet(dev, ordinal);
            byte[] name = new byte[256];
            JCudaDriver.cuDeviceGetName(name, name.length, dev);
            int[] major = new int[1];
            int[] minor = new int[1];
            JCudaDriver.cuDeviceGetAttribute(major, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
            JCudaDriver.cuDeviceGetAttribute(minor, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
            int[] driver = new int[1];
            JCudaDriver.cuDriverGetVersion(driver);
            CUcontext ctx = new CUcontext();
            JCudaDriver.cuDevicePrimaryCtxRetain(ctx, dev);
            String described = cString(name) + " (sm_" + major[0] + minor[0] + "), CUDA driver " + driver[0] / 1000 + "."
                    + driver[0] % 1000 / 10;
            rt = new CudaDriverRuntime(dev, ctx, described);
        } catch (Throwable t) {
            throw new MoeBackendException("CUDA backend: opening device " + ordinal + " failed: " + CudaProbe.describe(t), t);
        }
        try {
            rt.loadModules();
            rt.createCublas();
            return rt;
        } catch (RuntimeException | Error e) {
            rt.close();
            throw e;
        }
    }

    private static String cString(byte[] bytes) {
        int n = 0;
        while (n < bytes.length && bytes[n] != 0) {
            n++;
        }
        return new String(bytes, 0, n, StandardCharsets.UTF_8);
    }

    private void loadModules() {
        JCudaDriver.cuCtxSetCurrent(context);
        for (String file : KernelSources.files()) {
            String ptx = KernelSources.ptx(file);
            byte[] image = (ptx + '\0').getBytes(StandardCharsets.UTF_8);
            JITOptions jit = new JITOptions();
            jit.putBytes(CUjit_option.CU_JIT_ERROR_LOG_BUFFER, new byte[JIT_LOG_BYTES]);
            jit.putInt(CUjit_option.CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, JIT_LOG_BYTES);
            CUmodule module = new CUmodule();
            int status;
            try {
                // cuModuleLoadDataJIT is JCuda's wrapper of cuModuleLoadDataEx that hands back the JIT logs
                status = JCudaDriver.cuModuleLoadDataJIT(module, Pointer.to(image), jit);
            } catch (RuntimeException e) {
                throw new MoeBackendException("CUDA backend: loading kernels/" + file + ".ptx on " + deviceName + " failed: "
                        + e.getMessage() + jitLog(jit), e);
            }
            if (status != CUresult.CUDA_SUCCESS) {
                throw new MoeBackendException("CUDA backend: loading kernels/" + file + ".ptx on " + deviceName + " failed: "
                        + CUresult.stringFor(status) + jitLog(jit)
                        + (status == CUresult.CUDA_ERROR_UNSUPPORTED_PTX_VERSION
                        ? ". Hint: the driver is older than CUDA 12.0; update the NVIDIA driver" : ""));
            }
            modules.add(module);
            for (Kernel k : Kernel.values()) {
                if (k.file().equals(file)) {
                    CUfunction f = new CUfunction();
                    call("cuModuleGetFunction " + k.entryPoint(), () -> JCudaDriver.cuModuleGetFunction(f, module, k.entryPoint()));
                    functions.put(k, f);
                }
            }
        }
    }

    private static String jitLog(JITOptions jit) {
        try {
            String log = jit.getString(CUjit_option.CU_JIT_ERROR_LOG_BUFFER);
            return log == null || log.isBlank() ? "" : "; JIT error log: " + log.trim();
        } catch (RuntimeException e) {
            return "";
        }
    }

    private void createCublas() {
        try {
            JCublas2.setExceptionsEnabled(true);
            cublasHandle h = new cublasHandle();
            JCublas2.cublasCreate(h);
            int[] version = new int[1];
            JCublas2.cublasGetVersion(h, version);
            cublas = h;
            gemmImplementation = "cuBLAS " + version[0] / 10000 + "." + version[0] % 10000 / 100;
        } catch (Throwable t) {
            cublas = null;
            gemmImplementation = "moe4j gemm_tiled kernel (cuBLAS unavailable: " + CudaProbe.describe(t) + ")";
        }
    }

    private void bind() {
        if (closed) {
            throw new IllegalStateException("the CUDA runtime is closed");
        }
        call("cuCtxSetCurrent", () -> JCudaDriver.cuCtxSetCurrent(context));
    }

    private void call(String op, Runnable r) {
        try {
            r.run();
        } catch (MoeBackendException e) {
            throw e;
        } catch (RuntimeException e) {
            throw new MoeBackendException("CUDA " + op + " failed on " + deviceName + ": " + e.getMessage(), e);
        }
    }

    private CudaBuffer own(DeviceBuffer b) {
        if (!(b instanceof CudaBuffer c) || !live.contains(c)) {
            throw new IllegalArgumentException("buffer " + b + " is not a live buffer of this CUDA runtime");
        }
        return c;
    }

    @Override
    public String device() {
        return deviceName;
    }

    @Override
    public String gemmImplementation() {
        return gemmImplementation;
    }

    @Override
    public DeviceBuffer allocate(long bytes) {
        bind();
        CUdeviceptr p = new CUdeviceptr();
        call("cuMemAlloc(" + bytes + " bytes)", () -> JCudaDriver.cuMemAlloc(p, Math.max(4, bytes)));
        CudaBuffer b = new CudaBuffer(p, Math.max(4, bytes));
        live.add(b);
        return b;
    }

    @Override
    public void free(DeviceBuffer buffer) {
        bind();
        CudaBuffer b = own(buffer);
        live.remove(b);
        call("cuMemFree", () -> JCudaDriver.cuMemFree(b.pointer()));
    }

    @Override
    public void copyIn(float[] src, DeviceBuffer dst) {
        bind();
        CudaBuffer b = own(dst);
        call("cuMemcpyHtoD", () -> JCudaDriver.cuMemcpyHtoD(b.pointer(), Pointer.to(src), (long) src.length * Sizeof.FLOAT));
    }

    @Override
    public void copyIn(int[] src, DeviceBuffer dst) {
        bind();
        CudaBuffer b = own(dst);
        call("cuMemcpyHtoD", () -> JCudaDriver.cuMemcpyHtoD(b.pointer(), Pointer.to(src), (long) src.length * Sizeof.INT));
    }

    @Override
    public void copyOut(DeviceBuffer src, float[] dst) {
        bind();
        CudaBuffer b = own(src);
        call("cuMemcpyDtoH", () -> JCudaDriver.cuMemcpyDtoH(Pointer.to(dst), b.pointer(), (long) dst.length * Sizeof.FLOAT));
    }

    @Override
    public void copyOut(DeviceBuffer src, int[] dst) {
        bind();
        CudaBuffer b = own(src);
        call("cuMemcpyDtoH", () -> JCudaDriver.cuMemcpyDtoH(Pointer.to(dst), b.pointer(), (long) dst.length * Sizeof.INT));
    }

    @Override
    public void launch(Kernel kernel, Grid grid, Object... args) {
        if (grid.isEmpty()) {
            return;
        }
        bind();
        Pointer[] params = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            if (a instanceof DeviceBuffer b) {
                params[i] = Pointer.to(own(b).pointer());
            } else if (a instanceof Integer v) {
                params[i] = Pointer.to(new int[] {v});
            } else if (a instanceof Float v) {
                params[i] = Pointer.to(new float[] {v});
            } else {
                throw new IllegalArgumentException("kernel argument " + i + " of " + kernel.entryPoint() + " is a " + a);
            }
        }
        CUfunction f = functions.get(kernel);
        call("cuLaunchKernel " + kernel.entryPoint(), () -> JCudaDriver.cuLaunchKernel(f,
                grid.globalX() / grid.localX(), grid.globalY() / grid.localY(), 1,
                grid.localX(), grid.localY(), 1, 0, null, Pointer.to(params), null));
    }

    @Override
    public void gemm(GemmOps ops, int m, int n, int k, DeviceBuffer a, long aOffset, DeviceBuffer b, long bOffset,
                     DeviceBuffer c, long cOffset) {
        if (m == 0 || n == 0 || (k == 0 && ops.accumulate())) {
            return;
        }
        if (cublas == null) {
            DeviceRuntime.portableGemm(this, ops, m, n, k, a, aOffset, b, bOffset, c, cOffset);
            return;
        }
        bind();
        CublasRowMajor.ColumnMajorCall p = CublasRowMajor.plan(m, n, k, ops.transA(), ops.transB());
        CUdeviceptr first = own(p.firstIsRowB() ? b : a).pointer().withByteOffset((p.firstIsRowB() ? bOffset : aOffset) * Sizeof.FLOAT);
        CUdeviceptr second = own(p.firstIsRowB() ? a : b).pointer().withByteOffset((p.firstIsRowB() ? aOffset : bOffset) * Sizeof.FLOAT);
        CUdeviceptr out = own(c).pointer().withByteOffset(cOffset * Sizeof.FLOAT);
        Pointer one = Pointer.to(new float[] {1f});
        Pointer beta = Pointer.to(new float[] {ops.accumulate() ? 1f : 0f});
        int opFirst = p.transFirst() ? cublasOperation.CUBLAS_OP_T : cublasOperation.CUBLAS_OP_N;
        int opSecond = p.transSecond() ? cublasOperation.CUBLAS_OP_T : cublasOperation.CUBLAS_OP_N;
        call("cublasSgemm", () -> JCublas2.cublasSgemm(cublas, opFirst, opSecond,
                p.m(), p.n(), p.k(), one, first, p.lda(), second, p.ldb(), beta, out, p.ldc()));
    }

    /**
     * {@inheritDoc}
     *
     * <p>One {@code cublasSgemmStridedBatched} through {@link CublasRowMajor#planStridedBatched}, or
     * without cuBLAS the portable kernel once per entry.
     */
    @Override
    public void gemmStridedBatched(GemmOps ops, int m, int n, int k, DeviceBuffer a, long aOffset, long strideA, DeviceBuffer b,
                                   long bOffset, long strideB, DeviceBuffer c, long cOffset, long strideC, int batch) {
        if (batch == 0 || m == 0 || n == 0 || (k == 0 && ops.accumulate())) {
            return;
        }
        if (cublas == null) {
            DeviceRuntime.portableGemmStridedBatched(this, ops, m, n, k, a, aOffset, strideA, b, bOffset, strideB, c, cOffset, strideC,
                    batch);
            return;
        }
        bind();
        CublasRowMajor.StridedBatchedCall sb = CublasRowMajor.planStridedBatched(m, n, k, ops.transA(), ops.transB(), strideA, strideB,
                strideC, batch);
        CublasRowMajor.ColumnMajorCall p = sb.call();
        CUdeviceptr first = own(p.firstIsRowB() ? b : a).pointer().withByteOffset((p.firstIsRowB() ? bOffset : aOffset) * Sizeof.FLOAT);
        CUdeviceptr second = own(p.firstIsRowB() ? a : b).pointer().withByteOffset((p.firstIsRowB() ? aOffset : bOffset) * Sizeof.FLOAT);
        CUdeviceptr out = own(c).pointer().withByteOffset(cOffset * Sizeof.FLOAT);
        Pointer one = Pointer.to(new float[] {1f});
        Pointer beta = Pointer.to(new float[] {ops.accumulate() ? 1f : 0f});
        int opFirst = p.transFirst() ? cublasOperation.CUBLAS_OP_T : cublasOperation.CUBLAS_OP_N;
        int opSecond = p.transSecond() ? cublasOperation.CUBLAS_OP_T : cublasOperation.CUBLAS_OP_N;
        call("cublasSgemmStridedBatched", () -> JCublas2.cublasSgemmStridedBatched(cublas, opFirst, opSecond,
                p.m(), p.n(), p.k(), one, first, p.lda(), sb.strideFirst(), second, p.ldb(), sb.strideSecond(), beta, out, p.ldc(),
                sb.strideC(), sb.batch()));
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
        try {
            JCudaDriver.cuCtxSetCurrent(context);
            for (CudaBuffer b : live) {
                JCudaDriver.cuMemFree(b.pointer());
            }
            live.clear();
            if (cublas != null) {
                JCublas2.cublasDestroy(cublas);
                cublas = null;
            }
            for (CUmodule m : modules) {
                JCudaDriver.cuModuleUnload(m);
            }
            modules.clear();
            JCudaDriver.cuDevicePrimaryCtxRelease(device);
        } catch (RuntimeException e) {
            throw new MoeBackendException("CUDA close failed on " + deviceName + ": " + e.getMessage(), e);
        } finally {
            closed = true;
        }
    }
}

package io.github.moe4j.cpu;

import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.conformance.MoeBackendContract;

/**
 * Certifies the CPU backend on netlib's Vector-API BLAS, the fallback a JVM started with
 * {@code --add-modules jdk.incubator.vector} gets when no native BLAS loads: the build runs this
 * class in its own JVM (surefire execution {@code vector-blas}) with that module added and
 * {@code -Ddev.ludovic.netlib.blas.nativeLib} naming a library that does not exist.
 */
class CpuVectorBlasConformanceTest implements MoeBackendContract {
    @Override
    public MoeBackend backend() {
        CpuBackend b = (CpuBackend) MoeBackendContract.forProvider(CpuBackendProvider.NAME);
        System.out.println("[moe-cpu conformance, Vector-API BLAS] device: " + b.device());
        if (!b.blasImplementation().equals("dev.ludovic.netlib.blas.VectorBLAS")) {
            String got = b.blasImplementation();
            b.close();
            throw new IllegalStateException("this class certifies netlib's VectorBLAS but " + got
                    + " was loaded; run it through the 'vector-blas' surefire execution");
        }
        return b;
    }
}

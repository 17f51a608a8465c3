package io.github.moe4j.cpu;

import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.conformance.MoeBackendContract;

/**
 * Certifies the CPU backend on netlib's pure-Java BLAS: the build runs this class in its own JVM
 * (surefire execution {@code java-blas}) with {@code -Ddev.ludovic.netlib.blas.nativeLib} naming a
 * library that does not exist, so the native BLAS cannot load and the fallback is what is tested.
 */
class CpuJavaBlasConformanceTest implements MoeBackendContract {
    @Override
    public MoeBackend backend() {
        CpuBackend b = (CpuBackend) MoeBackendContract.forProvider(CpuBackendProvider.NAME);
        System.out.println("[moe-cpu conformance, Java BLAS] device: " + b.device());
        if (b.nativeBlas()) {
            b.close();
            throw new IllegalStateException("this class certifies the Java BLAS fallback but a native BLAS was loaded ("
                    + b.blasImplementation() + "); run it through the 'java-blas' surefire execution");
        }
        return b;
    }
}

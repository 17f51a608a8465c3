package io.github.moe4j.cpu;

import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.conformance.MoeBackendContract;

/** Certifies the CPU backend with the whole conformance suite, on whatever BLAS netlib loads here. */
class CpuConformanceTest implements MoeBackendContract {
    @Override
    public MoeBackend backend() {
        MoeBackend b = MoeBackendContract.forProvider(CpuBackendProvider.NAME);
        System.out.println("[moe-cpu conformance] device: " + b.device());
        return b;
    }
}

package io.github.moe4j.opencl;

import com.aparapi.Kernel;

/** Kernels Aparapi 3.0.0 cannot run in OpenCL (research java-gpu.md §2.2), for the refusal tests. */
final class UntranslatableKernels {
    private UntranslatableKernels() {}

    /** A {@code switch} (TABLESWITCH): Aparapi's translator rejects it. */
    static final class SwitchKernel extends Kernel {
        int mode;
        float[] out = new float[4];

        @Override
        public void run() {
            int i = getGlobalId();
            switch (mode) {
                case 0:
                    out[i] = 1f;
                    break;
                case 1:
                    out[i] = 2f;
                    break;
                case 2:
                    out[i] = 3f;
                    break;
                default:
                    out[i] = 4f;
            }
        }
    }

    /** {@code atomicAdd} on a {@code @Local} array: translated, but the OpenCL build fails (the helper takes {@code __global int*}). */
    static final class LocalAtomicKernel extends Kernel {
        @Local
        int[] counts = new int[4];
        int[] out = new int[4];

        @Override
        public void run() {
            int i = getLocalId();
            atomicAdd(counts, i % 4, 1);
            localBarrier();
            out[i % 4] = counts[i % 4];
        }
    }
}

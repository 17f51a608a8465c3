package io.github.moe4j.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import jcuda.nvptxcompiler.JNvPTXCompiler;
import jcuda.nvptxcompiler.nvPTXCompileResult;
import jcuda.nvptxcompiler.nvPTXCompilerHandle;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every shipped PTX file compiles, with no GPU and no driver, with the nvPTXCompiler 12.0 that is
 * linked statically into jcuda-natives ({@code libJNvPTXCompiler}), for sm_75, sm_80 and sm_90; it
 * declares PTX ISA 8.0 or lower (what CUDA 12.0 drivers accept) and target sm_75; and it defines every
 * entry point {@link Kernel} names for its file. This catches nvcc 13's {@code .version 9.0} and any
 * instruction newer than ISA 8.0.
 */
class PtxResourcesTest {
    private static final Pattern VERSION = Pattern.compile("(?m)^\\.version (\\d+)\\.(\\d+)$");

    static Stream<Arguments> ptxAndArch() {
        List<Arguments> list = new ArrayList<>();
        for (String file : KernelSources.files()) {
            for (String arch : new String[] {"sm_75", "sm_80", "sm_90"}) {
                list.add(Arguments.of(file, arch));
            }
        }
        return list.stream();
    }

    /** The PTX of each kernel file compiles for each architecture with the embedded nvPTXCompiler. */
    @ParameterizedTest(name = "{0}.ptx for {1}")
    @MethodSource("ptxAndArch")
    void compilesWithTheNvPtxCompilerInsideJcudaNatives(String file, String arch) {
        String ptx = KernelSources.ptx(file);
        byte[] image = (ptx + '\0').getBytes(StandardCharsets.UTF_8);
        nvPTXCompilerHandle handle = new nvPTXCompilerHandle();
        assertEquals(nvPTXCompileResult.NVPTXCOMPILE_SUCCESS, JNvPTXCompiler.nvPTXCompilerCreate(handle, image.length - 1, image));
        try {
            int status = JNvPTXCompiler.nvPTXCompilerCompile(handle, 2, new String[] {"--gpu-name=" + arch, "--verbose"});
            assertEquals(nvPTXCompileResult.NVPTXCOMPILE_SUCCESS, status, () -> file + ".ptx does not compile for " + arch + ": "
                    + nvPTXCompileResult.stringFor(status) + "\n" + errorLog(handle));
            long[] size = new long[1];
            JNvPTXCompiler.nvPTXCompilerGetCompiledProgramSize(handle, size);
            assertTrue(size[0] > 0, "empty cubin");
        } finally {
            JNvPTXCompiler.nvPTXCompilerDestroy(handle);
        }
    }

    /** The check has teeth: nvcc 13's unlowered {@code .version 9.0} is rejected by the CUDA 12.0 compiler. */
    @org.junit.jupiter.api.Test
    void rejectsIsa90AsACuda12DriverWould() {
        String ptx = VERSION.matcher(KernelSources.ptx("router")).replaceFirst(".version 9.0");
        byte[] image = (ptx + '\0').getBytes(StandardCharsets.UTF_8);
        nvPTXCompilerHandle handle = new nvPTXCompilerHandle();
        JNvPTXCompiler.nvPTXCompilerCreate(handle, image.length - 1, image);
        try {
            int status = JNvPTXCompiler.nvPTXCompilerCompile(handle, 1, new String[] {"--gpu-name=sm_75"});
            assertEquals(nvPTXCompileResult.NVPTXCOMPILE_ERROR_UNSUPPORTED_PTX_VERSION, status, nvPTXCompileResult.stringFor(status));
        } finally {
            JNvPTXCompiler.nvPTXCompilerDestroy(handle);
        }
    }

    private static String errorLog(nvPTXCompilerHandle handle) {
        long[] size = new long[1];
        JNvPTXCompiler.nvPTXCompilerGetErrorLogSize(handle, size);
        byte[] log = new byte[(int) size[0]];
        JNvPTXCompiler.nvPTXCompilerGetErrorLog(handle, log);
        return new String(log, StandardCharsets.UTF_8);
    }

    /** Each PTX declares ISA 8.0 or lower and target sm_75, and defines its file's entry points. */
    @ParameterizedTest(name = "{0}.ptx")
    @MethodSource("files")
    void declaresIsaAtMost80AndEveryEntryPoint(String file) {
        String ptx = KernelSources.ptx(file);
        Matcher m = VERSION.matcher(ptx);
        assertTrue(m.find(), file + ".ptx has no .version line");
        int version = Integer.parseInt(m.group(1)) * 10 + Integer.parseInt(m.group(2));
        assertTrue(version <= 80, file + ".ptx declares .version " + m.group(1) + "." + m.group(2)
                + "; CUDA 12.0 drivers accept at most 8.0 (run moe-cuda/scripts/build-ptx.sh)");
        assertTrue(ptx.contains("\n.target sm_75\n"), file + ".ptx is not for sm_75 (compute_75)");
        for (Kernel k : Kernel.values()) {
            if (k.file().equals(file)) {
                assertTrue(ptx.contains(".visible .entry " + k.entryPoint() + "("), file + ".ptx lacks entry point " + k.entryPoint());
            }
        }
    }

    static Stream<String> files() {
        return KernelSources.files().stream();
    }
}

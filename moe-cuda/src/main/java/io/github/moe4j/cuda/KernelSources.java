package io.github.moe4j.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The kernel files shipped as resources under {@code io/github/moe4j/cuda/kernels/}: the portable
 * sources ({@code .cu} plus the header {@code moe_portable.h}) and the PTX generated from them by
 * {@code moe-cuda/scripts/build-ptx.sh}.
 */
final class KernelSources {
    /** The resource folder, with a trailing slash. */
    static final String FOLDER = "/io/github/moe4j/cuda/kernels/";
    /** The portable header every kernel file includes. */
    static final String HEADER = "moe_portable.h";
    private static final String INCLUDE_LINE = "#include \"" + HEADER + "\"";

    private KernelSources() {}

    /** The kernel files' base names, in {@link Kernel} order, each once. */
    static List<String> files() {
        Set<String> files = new LinkedHashSet<>();
        for (Kernel k : Kernel.values()) {
            files.add(k.file());
        }
        return new ArrayList<>(files);
    }

    /** The text of a resource in the kernel folder. */
    static String read(String name) {
        try (InputStream in = KernelSources.class.getResourceAsStream(FOLDER + name)) {
            if (in == null) {
                throw new IllegalStateException("resource " + FOLDER + name + " is missing from the moe-cuda jar");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read resource " + FOLDER + name, e);
        }
    }

    /** The PTX of a kernel file. */
    static String ptx(String file) {
        return read(file + ".ptx");
    }

    /**
     * A kernel file as one OpenCL C program: its {@code #include "moe_portable.h"} line replaced by
     * the header's text (a jar has no include path).
     */
    static String openClSource(String file) {
        String source = read(file + ".cu");
        if (!source.contains(INCLUDE_LINE)) {
            throw new IllegalStateException(file + ".cu does not include " + HEADER);
        }
        return source.replace(INCLUDE_LINE, read(HEADER));
    }
}

package io.github.moe4j.cpu;

import dev.ludovic.netlib.blas.BLAS;
import dev.ludovic.netlib.blas.NativeBLAS;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Which BLAS implementation the expert and router GEMMs run on (the reference computes the same
 * products with plain loops in {@code ExpertNetwork} and {@code ReferenceLayer}): what {@link BLAS#getInstance()} picked (JNI to the
 * system's {@code libblas.so.3}, else the Vector API, else plain Java), with the native library's
 * file when one is loaded. A missing native BLAS is not silent: {@link #notice()} says so, once
 * in the log and always in the backend's {@code device()}.
 *
 * @param blas        the instance
 * @param description e.g. {@code "dev.ludovic.netlib.blas.JNIBLAS (OpenBLAS: /usr/lib/.../libblas.so.3)"}
 * @param isNative    whether it calls a native BLAS
 * @param notice      empty for a native BLAS; otherwise the one-line fallback notice
 */
record BlasInfo(BLAS blas, String description, boolean isNative, String notice) {

    private static final System.Logger LOG = System.getLogger(BlasInfo.class.getName());
    private static volatile BlasInfo instance;

    /** The process-wide instance (netlib decides once per JVM); logs the fallback notice the first time. */
    static BlasInfo get() {
        BlasInfo i = instance;
        if (i == null) {
            synchronized (BlasInfo.class) {
                i = instance;
                if (i == null) {
                    i = detect();
                    if (!i.isNative()) {
                        LOG.log(System.Logger.Level.WARNING, i.notice());
                    }
                    instance = i;
                }
            }
        }
        return i;
    }

    private static BlasInfo detect() {
        BLAS blas = BLAS.getInstance();
        String name = blas.getClass().getName();
        if (blas instanceof NativeBLAS) {
            String lib = loadedNativeBlas();
            String kind = lib.toLowerCase(java.util.Locale.ROOT).contains("openblas") ? "OpenBLAS: " : "";
            return new BlasInfo(blas, name + (lib.isEmpty() ? "" : " (" + kind + lib + ")"), true, "");
        }
        // the library netlib tried: its nativeLibPath or nativeLib property, else its default
        String tried = System.getProperty("dev.ludovic.netlib.blas.nativeLibPath",
                System.getProperty("dev.ludovic.netlib.blas.nativeLib", "libblas.so.3"));
        String notice = "moe-cpu: no native BLAS could be loaded (" + tried + "); the expert and router GEMMs run on " + name
                + ", several times slower. Hint: apt-get install libopenblas0-pthread";
        return new BlasInfo(blas, name + " (fallback: no native BLAS)", false, notice);
    }

    /** The file of the native BLAS loaded into this process, from /proc/self/maps; empty if unknown. */
    private static String loadedNativeBlas() {
        Path maps = Path.of("/proc/self/maps");
        if (!Files.isReadable(maps)) {
            return "";
        }
        try {
            List<String> lines = Files.readAllLines(maps);
            for (String line : lines) {
                int slash = line.indexOf('/');
                if (slash < 0) {
                    continue;
                }
                String path = line.substring(slash).trim();
                String file = path.substring(path.lastIndexOf('/') + 1);
                if (file.contains("blas") && !file.contains("netlibblasjni")) {
                    return path;
                }
            }
        } catch (IOException | RuntimeException e) {
            return "";
        }
        return "";
    }
}

package io.github.moe4j.opencl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * With no OpenCL platform (the ICD loader pointed at an empty vendor directory), availability is
 * "no" with the install hint, and the JVM neither throws nor crashes. Runs in a child JVM, since
 * Aparapi caches platforms per JVM.
 */
class NoPlatformTest {

    /** Entry point of the child JVM: prints the availability on one line. */
    public static void main(String[] args) {
        System.out.println("AVAILABILITY " + new OpenClBackendProvider().availability());
    }

    @Test
    void noPlatformMeansUnavailableWithTheInstallHint(@TempDir Path emptyVendors) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp",
                System.getProperty("java.class.path"), NoPlatformTest.class.getName());
        pb.environment().put("OCL_ICD_VENDORS", emptyVendors.toString() + File.separator);
        pb.redirectErrorStream(true);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        String line = out.lines().filter(l -> l.startsWith("AVAILABILITY")).findFirst().orElse(out);
        System.out.println("[moe-opencl tests] with no OpenCL platform: " + line);
        assertTrue(line.contains("available=false") && line.contains("no OpenCL platform found")
                && line.contains(OpenClDeviceProbe.INSTALL_HINT), line);
        assertTrue(Files.isDirectory(emptyVendors));
    }
}

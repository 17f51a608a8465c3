package io.github.moe4j.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Where nvcc is installed, regenerating the PTX with {@code scripts/build-ptx.sh} gives exactly the
 * committed files; so a kernel edited without rerunning the script fails the build. Skipped, with
 * the reason, where there is no nvcc.
 */
class PtxUpToDateTest {

    /** The committed PTX is what build-ptx.sh makes from the committed sources. */
    @Test
    void committedPtxMatchesARebuild(@TempDir Path out) throws IOException, InterruptedException {
        assumeTrue(onPath("nvcc"), "skipped: nvcc is not on PATH, so the PTX cannot be regenerated here");
        Path script = Paths.get("scripts", "build-ptx.sh").toAbsolutePath();
        Process p = new ProcessBuilder("bash", script.toString(), out.toString()).redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(true, p.waitFor(5, TimeUnit.MINUTES), "build-ptx.sh did not finish");
        assertEquals(0, p.exitValue(), "build-ptx.sh failed:\n" + log);
        for (String file : KernelSources.files()) {
            String rebuilt = Files.readString(out.resolve(file + ".ptx"));
            assertEquals(KernelSources.ptx(file), rebuilt, file + ".ptx is stale: run moe-cuda/scripts/build-ptx.sh and commit the result");
        }
    }

    private static boolean onPath(String tool) {
        String path = System.getenv("PATH");
        if (path == null) {
            return false;
        }
        for (String dir : path.split(java.io.File.pathSeparator)) {
            if (Files.isExecutable(Paths.get(dir, tool))) {
                return true;
            }
        }
        return false;
    }
}

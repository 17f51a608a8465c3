package io.github.moe4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Availability;
import io.github.moe4j.api.MoeBackends;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

class BackendsCommandTest {

    @Test
    void listsTheReferenceAsAvailableWithPriorityZero() {
        CliRun run = CliRun.of("backends");

        assertEquals(0, run.exitCode(), run::describe);
        assertTrue(Pattern.compile("(?m)^reference\\s+0\\s+yes\\s+Java ").matcher(run.out()).find(), run::describe);
        assertEquals("", run.err(), run::describe);
    }

    @Test
    void showsWhyAnUnavailableBackendCannotRun() {
        List<MoeBackends.Description> backends = List.of(
                new MoeBackends.Description("cuda", 300, Availability.no("no CUDA driver found (libcuda.so.1)")),
                new MoeBackends.Description("reference", 0, Availability.yes("Java, one thread")));
        StringWriter text = new StringWriter();

        BackendsCommand.print(backends, new PrintWriter(text));

        String[] lines = text.toString().split("\n");
        assertTrue(lines[3].matches("cuda\\s+300\\s+no\\s+no CUDA driver found \\(libcuda.so.1\\)"), text::toString);
        assertTrue(lines[4].matches("reference\\s+0\\s+yes\\s+Java, one thread"), text::toString);
    }

    @Test
    void saysSoWhenNoBackendIsOnTheClassPath() {
        StringWriter text = new StringWriter();

        BackendsCommand.print(List.of(), new PrintWriter(text));

        assertTrue(text.toString().startsWith("No moe4j backend is on the class path. Hint: add moe-reference"), text::toString);
    }
}

package io.github.moe4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class CommandLineErrorsTest {

    /** Asserts one line on standard error, nothing on standard output, no stack trace. */
    private static String oneLineError(CliRun run) {
        assertEquals("", run.out(), run::describe);
        assertFalse(run.err().contains("\tat "), run::describe);
        assertEquals(1, run.err().lines().count(), run::describe);
        return run.err();
    }

    @Test
    void unknownOptionGivesExitCode2AndNamesIt() {
        CliRun run = CliRun.of("demo", "--tokes", "3");

        assertEquals(2, run.exitCode(), run::describe);
        String err = oneLineError(run);
        assertTrue(err.startsWith("moe4j demo: Unknown option"), err);
        assertTrue(err.contains("'--tokes'"), err);
        assertTrue(err.contains("see 'moe4j demo --help'"), err);
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "demo --tokens abc                          | --tokens",
        "demo --tokens 0                            | --tokens",
        "demo --tokens 4097                         | --tokens",
        "demo --experts 65                          | --experts",
        "demo --experts 1                           | --experts",
        "demo --preset nope                         | --preset",
        "demo --seed x                              | --seed",
        "demo --capacity-factor -1                  | --capacity-factor",
        "demo --capacity-factor NaN                 | --capacity-factor",
        "demo --preset mixtral --capacity-factor 2  | --capacity-factor",
    })
    void badValueGivesExitCode2AndNamesTheOption(String commandLine, String option) {
        CliRun run = CliRun.of(commandLine.trim().split(" +"));

        assertEquals(2, run.exitCode(), run::describe);
        assertTrue(oneLineError(run).contains(option), run::describe);
    }

    @Test
    void unknownPresetListsThePresetsThereAre() {
        String err = oneLineError(CliRun.of("demo", "--preset", "mixtrel"));

        assertTrue(err.contains("'mixtrel' is not a preset; expected one of mixtral, switch, gshard, st-moe, "
                + "deepspeed-top1, deepspeed-top2, noisy-top-k, expert-choice"), err);
    }

    @Test
    void unknownBackendGivesExitCode1AndNamesIt() {
        CliRun run = CliRun.of("demo", "--backend", "tpu");

        assertEquals(1, run.exitCode(), run::describe);
        assertTrue(oneLineError(run).startsWith("moe4j demo: no backend named 'tpu' on the class path; found ["), run::describe);
    }

    @Test
    void noCommandIsAUsageError() {
        CliRun run = CliRun.of();

        assertEquals(2, run.exitCode(), run::describe);
        assertTrue(oneLineError(run).contains("a command is missing: backends or demo"), run::describe);
    }

    @Test
    void versionPrintsTheProjectVersionFilteredByMaven() {
        CliRun run = CliRun.of("--version");

        assertEquals(0, run.exitCode(), run::describe);
        assertTrue(run.out().lines().findFirst().orElseThrow().matches("moe4j \\d+\\.\\d+\\.\\d+(-SNAPSHOT)?"), run::describe);
    }

    @Test
    void helpListsBothCommands() {
        CliRun run = CliRun.of("--help");

        assertEquals(0, run.exitCode(), run::describe);
        assertTrue(run.out().lines().anyMatch(l -> l.startsWith("  backends  ")), run::describe);
        assertTrue(run.out().lines().anyMatch(l -> l.startsWith("  demo  ")), run::describe);
    }
}

package io.github.moe4j.cli;

import java.io.PrintWriter;
import java.io.StringWriter;
import picocli.CommandLine;

/**
 * One in-process run of the {@code moe4j} command line, as {@link Moe4jCommand#main} would run it
 * but with standard output and error captured.
 *
 * @param exitCode what {@code main} would exit with
 * @param out      everything written to standard output
 * @param err      everything written to standard error
 */
record CliRun(int exitCode, String out, String err) {

    /** Runs {@code moe4j args...}. */
    static CliRun of(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cli = Moe4jCommand.commandLine();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        int code = cli.execute(args);
        return new CliRun(code, out.toString(), err.toString());
    }

    /** For assertion messages. */
    String describe() {
        return "exit " + exitCode + "\n--- out:\n" + out + "--- err:\n" + err;
    }
}

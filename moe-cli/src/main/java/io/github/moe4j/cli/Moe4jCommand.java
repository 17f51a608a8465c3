package io.github.moe4j.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;
import java.util.logging.Level;
import java.util.logging.Logger;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * The {@code moe4j} command: {@code moe4j backends} lists the backends on the class path and
 * {@code moe4j demo} runs one small layer on random data and explains what it did.
 *
 * <p>Exit codes: 0 when the command ran, 1 when it failed (the message says why), 2 for a
 * mistake in the command line (the message names the option). Errors are one line, without a
 * stack trace, on standard error.
 */
@Command(name = "moe4j",
        mixinStandardHelpOptions = true,
        versionProvider = Moe4jCommand.Version.class,
        description = "Sparse Mixture-of-Experts layers for Java: list the backends, or run a small layer and see how it routes.",
        subcommands = {BackendsCommand.class, DemoCommand.class},
        commandListHeading = "%nCommands:%n",
        footer = {"", "Exit codes: 0 ok, 1 the command failed, 2 a mistake in the command line."})
public final class Moe4jCommand implements Runnable {

    @Spec
    private CommandSpec spec;

    /** For picocli. */
    Moe4jCommand() {}

    /** Runs the command line and exits the JVM with its exit code. */
    public static void main(String[] args) {
        // netlib logs its own probe for each BLAS it cannot load (e.g. the Vector API one, which needs
        // --add-modules); the backend's device() already says which BLAS runs, so only its errors show.
        NETLIB_LOG.setLevel(Level.SEVERE);
        System.exit(commandLine().execute(args));
    }

    /** Held so the level set in {@link #main} is not lost with a collected logger. */
    private static final Logger NETLIB_LOG = Logger.getLogger("dev.ludovic.netlib");

    /**
     * The command line with moe4j's error handling: a wrong option or value and a failing command
     * each print one line on the error stream and give exit code 2 or 1. Set its out and err
     * writers to capture the output.
     */
    public static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new Moe4jCommand());
        OneLineErrorHandler errors = new OneLineErrorHandler();
        cli.setParameterExceptionHandler(errors);
        cli.setExecutionExceptionHandler(errors);
        return cli;
    }

    /** {@code moe4j} without a command is a usage mistake. */
    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(), "a command is missing: backends or demo");
    }

    /** Prints the project version, filtered into {@code version.properties} by Maven, and the JVM's. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            Properties p = new Properties();
            try (InputStream in = Moe4jCommand.class.getResourceAsStream("version.properties")) {
                if (in == null) {
                    throw new IllegalStateException("version.properties is missing from the moe4j jar");
                }
                p.load(in);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read version.properties", e);
            }
            return new String[] {
                "moe4j " + p.getProperty("version"),
                "Java " + System.getProperty("java.version") + " (" + System.getProperty("java.vm.name") + ")"
            };
        }
    }
}

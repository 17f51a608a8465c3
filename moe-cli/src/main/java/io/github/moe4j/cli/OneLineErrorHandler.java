package io.github.moe4j.cli;

import io.github.moe4j.api.MoeBackendException;
import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ParseResult;

/**
 * Turns errors into one line on the command's error stream, prefixed with the command's name:
 * a command-line mistake (unknown option, bad value) gives exit code 2 and a pointer to
 * {@code --help}; an error the command reports on purpose gives exit code 1. Anything else is a bug
 * in moe4j and keeps its stack trace.
 */
final class OneLineErrorHandler implements CommandLine.IParameterExceptionHandler, CommandLine.IExecutionExceptionHandler {

    @Override
    public int handleParseException(ParameterException ex, String[] args) {
        CommandLine cmd = ex.getCommandLine();
        String name = cmd.getCommandSpec().qualifiedName();
        cmd.getErr().println(name + ": " + ex.getMessage() + " (see '" + name + " --help')");
        cmd.getErr().flush();
        return cmd.getCommandSpec().exitCodeOnInvalidInput();
    }

    @Override
    public int handleExecutionException(Exception ex, CommandLine cmd, ParseResult parseResult) {
        if (ex instanceof ParameterException pe) {
            return handleParseException(pe, parseResult.originalArgs().toArray(new String[0]));
        }
        PrintWriter err = cmd.getErr();
        String name = cmd.getCommandSpec().qualifiedName();
        if (ex instanceof IllegalArgumentException || ex instanceof MoeBackendException
                || ex instanceof UnsupportedOperationException) {
            err.println(name + ": " + ex.getMessage());
        } else {
            err.println(name + ": unexpected " + ex + " (a bug in moe4j; please report it with this trace)");
            ex.printStackTrace(err);
        }
        err.flush();
        return cmd.getCommandSpec().exitCodeOnExecutionException();
    }
}

package io.github.moe4j.cli;

import io.github.moe4j.api.MoeBackends;
import java.io.PrintWriter;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * {@code moe4j backends}: every backend provider on the class path ({@link MoeBackends#describe()}),
 * highest priority first, with whether it is available here and why, or why not.
 */
@Command(name = "backends",
        mixinStandardHelpOptions = true,
        description = {"Lists every moe4j backend on the class path and whether it runs on this machine.",
            "",
            "Highest priority first, each with the device it would use or why it cannot run;"
                + " 'demo' and MoeBackends.best() use the first available one.",
            ""})
final class BackendsCommand implements Runnable {

    @Spec
    private CommandSpec spec;

    /** For picocli. */
    BackendsCommand() {}

    @Override
    public void run() {
        print(MoeBackends.describe(), spec.commandLine().getOut());
    }

    /** Writes the table of {@code backends} to {@code out}. */
    static void print(List<MoeBackends.Description> backends, PrintWriter out) {
        if (backends.isEmpty()) {
            out.println("No moe4j backend is on the class path. Hint: add moe-reference, which always runs.");
            out.flush();
            return;
        }
        int nameWidth = "backend".length();
        for (MoeBackends.Description d : backends) {
            nameWidth = Math.max(nameWidth, d.name().length());
        }
        String row = "%-" + nameWidth + "s  %8s  %-9s  %s%n";
        out.printf(Locale.ROOT, "Backends on the class path, highest priority first (the first available one is the default):%n%n");
        out.printf(Locale.ROOT, row, "backend", "priority", "available", "device, or why not");
        for (MoeBackends.Description d : backends) {
            out.printf(Locale.ROOT, row, d.name(), d.priority(), d.availability().available() ? "yes" : "no",
                    d.availability().reason());
        }
        out.flush();
    }
}

package io.github.moe4j.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The repository's README.md, and the parts of it that tests run or compare. */
final class Readme {
    static final String EXAMPLE_START = "<!-- example:start -->";
    static final String EXAMPLE_END = "<!-- example:end -->";

    private Readme() {}

    /**
     * The repository root: the {@code moe4j.repositoryRoot} property that the moe-cli pom gives
     * surefire, or the parent of the working directory (surefire and IDEs run in the module).
     */
    static Path repositoryRoot() {
        String root = System.getProperty("moe4j.repositoryRoot");
        return (root != null ? Paths.get(root) : Paths.get("..")).toAbsolutePath().normalize();
    }

    static String read(String relativePath) throws IOException {
        return Files.readString(repositoryRoot().resolve(relativePath), StandardCharsets.UTF_8);
    }

    static String text() throws IOException {
        return read("README.md");
    }

    /** The body of the one {@code ```java} block between the example markers. */
    static String javaExample() throws IOException {
        String text = text();
        int start = text.indexOf(EXAMPLE_START);
        int end = text.indexOf(EXAMPLE_END);
        if (start < 0 || end < start) {
            throw new AssertionError("README.md has no " + EXAMPLE_START + " ... " + EXAMPLE_END + " section");
        }
        Matcher m = Pattern.compile("(?s)```java\n(.*?)```").matcher(text.substring(start, end));
        if (!m.find()) {
            throw new AssertionError("README.md's example section has no ```java block");
        }
        return m.group(1);
    }

    /** The first line of the first fenced block after the line {@code label}, e.g. "Run the tests:". */
    static String commandAfter(String label) throws IOException {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(label) + "\n\n```\\w*\n(.*)\n").matcher(text());
        if (!m.find()) {
            throw new AssertionError("README.md has no code block after '" + label + "'");
        }
        return m.group(1);
    }
}

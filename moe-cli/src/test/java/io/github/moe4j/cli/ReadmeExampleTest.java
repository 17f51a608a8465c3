package io.github.moe4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.StringWriter;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The Java example in README.md compiles as it is written and runs. */
class ReadmeExampleTest {

    @Test
    void readmeExampleCompilesAndRunsOnTheBestBackend(@TempDir Path dir) throws Exception {
        Path source = dir.resolve("ReadmeExample.java");
        Files.writeString(source, Readme.javaExample(), StandardCharsets.UTF_8);
        Path classes = Files.createDirectory(dir.resolve("classes"));

        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        assertTrue(javac != null, "no system Java compiler: run the tests on a JDK, not a JRE");
        StringWriter diagnostics = new StringWriter();
        boolean compiled = javac.getTask(diagnostics, null, null,
                List.of("-classpath", System.getProperty("java.class.path"), "-d", classes.toString(),
                        "-proc:none", "-Xlint:all,-path", "-Werror"),
                null, javac.getStandardFileManager(null, null, StandardCharsets.UTF_8).getJavaFileObjects(source)).call();
        assertTrue(compiled, "README.md's example does not compile:\n" + diagnostics);

        String printed = runMain(classes);

        List<String> lines = printed.lines().toList();
        assertEquals(6, lines.size(), printed);
        String best;
        try (io.github.moe4j.api.MoeBackend b = io.github.moe4j.api.MoeBackends.best()) {
            best = b.name();
        }
        assertTrue(lines.get(0).startsWith("backend: " + best + " on "), "the example runs on MoeBackends.best(), '" + best + "':\n" + printed);
        assertTrue(lines.get(1).startsWith("output:  Tensor[3, 8] ["), printed);
        for (int t = 0; t < 3; t++) {
            assertTrue(lines.get(2 + t).matches("token " + t + " -> expert [0-3] \\(gate 0[.,]\\d{3}\\), expert [0-3] \\(gate 0[.,]\\d{3}\\)"),
                    printed);
        }
        assertTrue(lines.get(5).startsWith("losses:  MoeLosses[aux="), printed);
    }

    /** Runs {@code ReadmeExample.main} with standard output captured. */
    private static String runMain(Path classes) throws Exception {
        PrintStream original = System.out;
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (URLClassLoader loader = new URLClassLoader(new URL[] {classes.toUri().toURL()}, ReadmeExampleTest.class.getClassLoader());
             PrintStream capture = new PrintStream(bytes, true, StandardCharsets.UTF_8)) {
            Method main = loader.loadClass("ReadmeExample").getMethod("main", String[].class);
            System.setOut(capture);
            main.invoke(null, (Object) new String[0]);
        } finally {
            System.setOut(original);
        }
        return bytes.toString(StandardCharsets.UTF_8);
    }
}

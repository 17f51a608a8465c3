package io.github.moe4j.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * CERTIFY.md's snippet is real code: its Java block is {@code certified.ReferenceConformanceTest}, which this
 * build compiles and runs, line for line; its Maven block names this module's coordinates.
 */
class CertifySnippetTest {
    private static final Path MODULE = Path.of(System.getProperty("basedir", "."));

    @Test
    void javaSnippetIsTheReferenceConformanceTestLineForLine() throws IOException {
        List<String> snippet = block(read(MODULE.resolve("CERTIFY.md")), "java");
        String source = read(MODULE.resolve("src/test/java/io/github/moe4j/conformance/certified/ReferenceConformanceTest.java"));
        assertFalse(snippet.isEmpty(), "CERTIFY.md has no java block");
        List<String> sourceLines = source.lines().filter(l -> !l.startsWith("package ") && !l.isBlank()).toList();
        assertEquals(sourceLines, snippet.stream().filter(l -> !l.isBlank()).toList(),
                "CERTIFY.md's java block must be ReferenceConformanceTest.java without its package line");
    }

    @Test
    void rootReadmeCarriesCertifyMdVerbatim() throws IOException {
        String certify = read(MODULE.resolve("CERTIFY.md"));
        // the same text; links relative to conformance-tests/ become relative to the repository root
        String body = certify.substring(certify.indexOf('\n') + 1).strip().replace("](../", "](");
        String readme = read(MODULE.resolve("../README.md"));
        int start = readme.indexOf("<!-- certify:start");
        int end = readme.indexOf("<!-- certify:end -->");
        assertTrue(start >= 0 && end > start, "README.md has no certify:start/certify:end markers");
        String section = readme.substring(readme.indexOf('\n', start) + 1, end).strip();
        assertEquals(body, section, "README.md's 'Certify a backend' section must be CERTIFY.md without its heading");
    }

    @Test
    void mavenSnippetNamesThisModule() throws IOException {
        String xml = String.join("\n", block(read(MODULE.resolve("CERTIFY.md")), "xml"));
        String pom = read(MODULE.resolve("pom.xml"));
        assertTrue(xml.contains("<groupId>" + tag(pom, "groupId") + "</groupId>"), xml);
        assertTrue(xml.contains("<artifactId>" + artifactId(pom) + "</artifactId>"), xml);
        assertTrue(xml.contains("<version>" + tag(pom, "version") + "</version>"), xml);
        assertTrue(xml.contains("<scope>test</scope>"), xml);
    }

    private static String read(Path p) throws IOException {
        return Files.readString(p);
    }

    /** The lines of the first fenced block of that language. */
    private static List<String> block(String markdown, String language) {
        List<String> lines = new ArrayList<>();
        boolean in = false;
        for (String line : markdown.split("\n", -1)) {
            if (!in && line.equals("```" + language)) {
                in = true;
            } else if (in && line.equals("```")) {
                return lines;
            } else if (in) {
                lines.add(line);
            }
        }
        return lines;
    }

    /** The first occurrence of a tag (the parent's groupId and version come first in the pom). */
    private static String tag(String pom, String name) {
        Matcher m = Pattern.compile("<" + name + ">([^<]+)</" + name + ">").matcher(pom);
        assertTrue(m.find(), "pom.xml has no " + name);
        return m.group(1);
    }

    /** The module's own artifactId: the one after the parent block. */
    private static String artifactId(String pom) {
        String afterParent = pom.substring(pom.indexOf("</parent>"));
        return tag(afterParent, "artifactId");
    }
}

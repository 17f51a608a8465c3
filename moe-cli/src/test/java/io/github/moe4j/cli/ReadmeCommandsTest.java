package io.github.moe4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import org.junit.jupiter.api.Test;

/** The two commands README.md promises are the ones the build and CI provide. */
class ReadmeCommandsTest {

    @Test
    void ciRunsExactlyTheReadmesTestCommand() throws IOException {
        String command = Readme.commandAfter("Run the tests:");

        assertEquals("./mvnw -B verify", command);
        assertTrue(Readme.read(".ci/run").lines().anyMatch(l -> l.strip().equals(command)),
                ".ci/run does not run '" + command + "'");
    }

    @Test
    void demoCommandRunsTheJarTheShadePluginWrites() throws IOException {
        String command = Readme.commandAfter("Run the demo:");

        assertEquals("./mvnw -q -B package -DskipTests && java -jar moe-cli/target/moe4j.jar demo", command);
        assertTrue(Readme.read("moe-cli/pom.xml").contains("<outputFile>${project.build.directory}/moe4j.jar</outputFile>"),
                "moe-cli/pom.xml no longer writes target/moe4j.jar");
    }
}

package io.github.moe4j.conformance.broken;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.engine.support.descriptor.MethodSource;
import org.junit.platform.launcher.Launcher;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;

/**
 * The suite proves that it can fail (STYLE §22): the whole contract runs, through the JUnit
 * Platform launcher, against each deliberately broken backend, and must report at least one
 * failure, among them the property named by the {@link Breakage}, failing on a comparison (an
 * {@link AssertionError}) rather than on some other exception.
 */
class BrokenBackendsAreRejectedTest {

    @ParameterizedTest(name = "{0}")
    @EnumSource(Breakage.class)
    void theSuiteRejectsTheBrokenBackend(Breakage breakage) {
        BrokenBackendContract.current = breakage;
        Map<String, Throwable> failures = runContract();
        StringBuilder summary = new StringBuilder("[broken backend " + breakage + "] failed properties:");
        failures.forEach((p, t) -> summary.append("\n  ").append(p).append(": ").append(firstLine(t)));
        System.out.println(summary);

        assertFalse(failures.isEmpty(), breakage + ": the suite passed a broken backend");
        Throwable expected = failures.get(breakage.rejectedBy());
        assertTrue(expected != null, breakage + ": expected " + breakage.rejectedBy() + " among the failed properties " + failures.keySet());
        assertTrue(expected instanceof AssertionError, breakage + ": " + breakage.rejectedBy()
                + " failed, but not on a comparison: " + expected);
    }

    /** Runs {@link BrokenBackendContract}; returns each failed property's name and its throwable. */
    static Map<String, Throwable> runContract() {
        Path dir;
        try {
            dir = Files.createTempDirectory("jqwik-broken-backends");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Path db = dir.resolve("database");
        LauncherDiscoveryRequest request = LauncherDiscoveryRequestBuilder.request()
                .selectors(selectClass(BrokenBackendContract.class))
                .configurationParameter("jqwik.database", db.toString())
                .configurationParameter("jqwik.failures.after.default", "RANDOM_SEED")
                .configurationParameter("jqwik.reporting.onlyfailures", "true")
                .configurationParameter("jqwik.shrinking.bounded.seconds", "5")
                .build();
        Map<String, Throwable> failures = new TreeMap<>();
        Launcher launcher = LauncherFactory.create();
        launcher.execute(request, new TestExecutionListener() {
            @Override
            public void executionFinished(TestIdentifier id, TestExecutionResult result) {
                if (result.getStatus() == TestExecutionResult.Status.FAILED && id.getSource().orElse(null) instanceof MethodSource m) {
                    failures.put(m.getMethodName(), result.getThrowable().orElse(null));
                }
            }
        });
        try {
            Files.deleteIfExists(db);
            Files.deleteIfExists(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return failures;
    }

    private static String firstLine(Throwable t) {
        String s = String.valueOf(t);
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}

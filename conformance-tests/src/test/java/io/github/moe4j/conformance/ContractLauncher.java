package io.github.moe4j.conformance;

import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.engine.support.descriptor.ClassSource;
import org.junit.platform.engine.support.descriptor.MethodSource;
import org.junit.platform.launcher.Launcher;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;

/** Runs a contract class through the JUnit Platform launcher (jqwik engine) and collects what happened. */
public final class ContractLauncher {
    private ContractLauncher() {}

    /**
     * The outcome of one run.
     *
     * @param failures  each failed property's name and its throwable
     * @param passed    how many properties passed
     * @param skipped   each skipped container or property and its reason
     */
    public record Outcome(Map<String, Throwable> failures, int passed, Map<String, String> skipped) {}

    /** Runs every property of {@code contract}, shrinking failures; failing seeds are not replayed across runs. */
    public static Outcome run(Class<?> contract) {
        return run(contract, true);
    }

    /**
     * Runs every property of {@code contract}; failing seeds are not replayed across runs.
     *
     * @param shrink whether failures are shrunk (off where only the fact of failing matters)
     */
    public static Outcome run(Class<?> contract, boolean shrink) {
        Path dir;
        try {
            dir = Files.createTempDirectory("jqwik-contract-run");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Path db = dir.resolve("database");
        LauncherDiscoveryRequest request = LauncherDiscoveryRequestBuilder.request()
                .selectors(selectClass(contract))
                .configurationParameter("jqwik.database", db.toString())
                .configurationParameter("jqwik.failures.after.default", "RANDOM_SEED")
                .configurationParameter("jqwik.reporting.onlyfailures", "true")
                .configurationParameter("jqwik.shrinking.default", shrink ? "BOUNDED" : "OFF")
                .configurationParameter("jqwik.shrinking.bounded.seconds", "30")
                .build();
        Map<String, Throwable> failures = new TreeMap<>();
        Map<String, String> skipped = new TreeMap<>();
        int[] passed = {0};
        Launcher launcher = LauncherFactory.create();
        launcher.execute(request, new TestExecutionListener() {
            @Override
            public void executionSkipped(TestIdentifier id, String reason) {
                skipped.put(name(id), reason);
            }

            @Override
            public void executionFinished(TestIdentifier id, TestExecutionResult result) {
                if (!id.isTest()) {
                    if (result.getStatus() == TestExecutionResult.Status.FAILED) {
                        failures.put(name(id), result.getThrowable().orElse(null));
                    }
                    return;
                }
                if (result.getStatus() == TestExecutionResult.Status.SUCCESSFUL) {
                    passed[0]++;
                } else {
                    failures.put(name(id), result.getThrowable().orElse(null));
                }
            }
        });
        try {
            Files.deleteIfExists(db);
            Files.deleteIfExists(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return new Outcome(failures, passed[0], skipped);
    }

    private static String name(TestIdentifier id) {
        Object source = id.getSource().orElse(null);
        if (source instanceof MethodSource m) {
            return m.getMethodName();
        }
        if (source instanceof ClassSource c) {
            return c.getClassName();
        }
        return id.getDisplayName();
    }

    /** The first line of a throwable's text. */
    public static String firstLine(Throwable t) {
        String s = String.valueOf(t);
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}

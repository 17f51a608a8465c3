package io.github.moe4j.conformance.broken;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.conformance.ContractLauncher;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The suite proves that it can fail (STYLE §22): the whole contract runs, through the JUnit
 * Platform launcher, against each deliberately broken backend, and must report at least one
 * failure, among them the property named by the {@link Breakage}, failing on a comparison (an
 * {@link AssertionError}) rather than on some other exception. Failures are not shrunk here: the
 * fact of failing is what is tested ({@code ShrinkingTest} covers shrinking).
 */
class BrokenBackendsAreRejectedTest {

    @ParameterizedTest(name = "{0}")
    @EnumSource(Breakage.class)
    void theSuiteRejectsTheBrokenBackend(Breakage breakage) {
        BrokenBackendContract.current = breakage;
        ContractLauncher.Outcome outcome = ContractLauncher.run(BrokenBackendContract.class, false);
        Map<String, Throwable> failures = outcome.failures();
        StringBuilder summary = new StringBuilder("[broken backend " + breakage + "] " + outcome.passed() + " properties passed, "
                + failures.size() + " failed:");
        failures.forEach((p, t) -> summary.append("\n  ").append(p).append(": ").append(ContractLauncher.firstLine(t)));
        System.out.println(summary);

        assertFalse(failures.isEmpty(), breakage + ": the suite passed a broken backend");
        assertTrue(outcome.skipped().isEmpty(), breakage + ": the suite skipped " + outcome.skipped());
        Throwable expected = failures.get(breakage.rejectedBy());
        assertTrue(expected != null, breakage + ": expected " + breakage.rejectedBy() + " among the failed properties " + failures.keySet());
        assertTrue(expected instanceof AssertionError, breakage + ": " + breakage.rejectedBy()
                + " failed, but not on a comparison: " + expected);
        for (Throwable cause = expected; cause != null; cause = cause.getCause()) {
            assertFalse(cause instanceof UnsupportedOperationException, breakage + ": " + breakage.rejectedBy()
                    + " failed because something is not implemented, not because it caught the bug: " + cause);
        }
    }
}

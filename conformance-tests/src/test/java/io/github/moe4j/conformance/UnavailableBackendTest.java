package io.github.moe4j.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** A backend that cannot run here is skipped as a whole, visibly and with its provider's reason; never failed, never silently passed. */
class UnavailableBackendTest {

    @Test
    void containerOfAnUnavailableBackendIsSkippedWithTheProvidersReason() {
        ContractLauncher.Outcome outcome = ContractLauncher.run(UnavailableBackendContract.class);
        assertTrue(outcome.failures().isEmpty(), "failures: " + outcome.failures());
        assertEquals(0, outcome.passed(), "no property may pass for a backend that did not run");
        String reason = outcome.skipped().get(UnavailableBackendContract.class.getName());
        assertTrue(reason != null && reason.contains(UnavailableExampleProvider.REASON),
                "the container must be skipped with the provider's reason, got " + outcome.skipped());
    }

    @Test
    void forProviderNamesTheMissingProviderAndTheOnesThereAre() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> MoeBackendContract.forProvider("no-such-backend"));
        assertTrue(e.getMessage().contains("no-such-backend") && e.getMessage().contains("reference"), e.getMessage());
    }

    @Test
    void forProviderThrowsBackendUnavailableWithTheReason() {
        BackendUnavailableException e = assertThrows(BackendUnavailableException.class,
                () -> MoeBackendContract.forProvider(UnavailableExampleProvider.NAME));
        assertEquals(UnavailableExampleProvider.REASON, e.reason());
    }
}

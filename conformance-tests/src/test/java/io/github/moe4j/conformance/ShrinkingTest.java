package io.github.moe4j.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The generators shrink: a failure at E >= 3, T >= 2 is reported on the smallest such case. */
class ShrinkingTest {

    @Test
    void aFailingCaseShrinksToTheSmallestSizes() {
        ContractLauncher.Outcome outcome = ContractLauncher.run(ShrinkingExample.class);
        assertEquals(1, outcome.failures().size(), outcome.failures().toString());
        String message = outcome.failures().values().iterator().next().getMessage();
        assertTrue(message.contains(" E=3 ") && message.contains("T=2 "), "not shrunk to E = 3, T = 2: " + message);
        assertTrue(message.contains("d=1 h=1"), "not shrunk to d = h = 1: " + message);
    }
}

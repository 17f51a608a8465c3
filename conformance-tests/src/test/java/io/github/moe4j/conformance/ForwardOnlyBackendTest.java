package io.github.moe4j.conformance;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/**
 * A backend whose {@code supports()} says {@link io.github.moe4j.api.Support#forwardOnly} is
 * certified for forward and reported unsupported, with its reason, for backward: its backward
 * properties neither fail nor vanish.
 */
class ForwardOnlyBackendTest {

    @Test
    void backwardIsReportedUnsupportedWithTheReasonAndForwardIsCertified() {
        PrintStream out = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        ContractLauncher.Outcome outcome;
        System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            outcome = ContractLauncher.run(ForwardOnlyBackendContract.class);
        } finally {
            System.setOut(out);
        }
        String printed = captured.toString(StandardCharsets.UTF_8);
        assertTrue(outcome.failures().isEmpty(), "failures: " + outcome.failures());
        assertTrue(outcome.passed() > 20, "forward properties ran: " + outcome.passed());
        assertTrue(printed.contains(ForwardOnlyBackend.REASON), printed);
        assertTrue(printed.matches("(?s).*\\| backward\\s+0\\s+[1-9]\\d*\\s+0.*"), "some cell counts backward as unsupported:\n" + printed);
        assertTrue(!printed.matches("(?s).*\\| backward\\s+[1-9]\\d*\\s+\\d+\\s+\\d+.*"), "no cell counts a backward pass:\n" + printed);
    }
}

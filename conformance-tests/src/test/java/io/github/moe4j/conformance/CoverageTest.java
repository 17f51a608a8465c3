package io.github.moe4j.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.Presets;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The coverage matrix: what it counts, what it prints, and that unsupported comes only from supports() with its reason. */
class CoverageTest {

    @Test
    void reportCountsEachOutcomePerCellAndListsTheReasons() {
        String scope = "CoverageTest / synthetic";
        MoeConfig mixtral = Presets.mixtral().modelDim(2).hiddenDim(2).experts(4).build();
        MoeConfig ec = Presets.expertChoice(1.0).modelDim(2).hiddenDim(2).experts(4).activation(Activation.GELU).build();
        Coverage.record(scope, mixtral, Coverage.Direction.FORWARD, Coverage.Outcome.PASSED, "");
        Coverage.record(scope, mixtral, Coverage.Direction.FORWARD, Coverage.Outcome.PASSED, "");
        Coverage.record(scope, mixtral, Coverage.Direction.BACKWARD, Coverage.Outcome.FAILED, "");
        Coverage.record(scope, ec, Coverage.Direction.FORWARD, Coverage.Outcome.UNSUPPORTED, "no EC kernel");
        try {
            String report = Coverage.report(scope);
            assertTrue(report.contains("token-choice RENORMALIZE/BEFORE_CAPACITY SWIGLU     dropless  | forward     2     0     0 | backward     0     0     1"),
                    report);
            assertTrue(report.contains("expert-choice                        GELU       factor    | forward     0     1     0"), report);
            assertTrue(report.contains("1 x expert-choice, GELU, factor: no EC kernel"), report);
            assertTrue(report.contains("cells exercised forward but never backward: 1 of 2"), report);
            assertEquals(1, Coverage.total(scope, Coverage.Direction.BACKWARD, Coverage.Outcome.FAILED));
        } finally {
            Coverage.clear(scope);
        }
    }

    @Test
    void unsupportedConfigurationsAreCountedWithTheBackendsReasonAndNotFailed() {
        PrintStream out = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        ContractLauncher.Outcome outcome;
        System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            outcome = ContractLauncher.run(PartialBackendContract.class);
        } finally {
            System.setOut(out);
        }
        String printed = captured.toString(StandardCharsets.UTF_8);
        assertTrue(outcome.failures().isEmpty(), "failures: " + outcome.failures());
        assertTrue(printed.contains("unsupported, with the backend's reasons") && printed.contains(PartialBackend.REASON), printed);
        Pattern row = Pattern.compile("^  (\\S.{35}) (\\S+)\\s+(\\S+)\\s+\\| forward\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)", Pattern.MULTILINE);
        Matcher m = row.matcher(printed);
        int rows = 0;
        while (m.find()) {
            if (m.group(1).equals("router                              ")) {
                continue;
            }
            rows++;
            boolean ec = m.group(1).startsWith("expert-choice");
            List<Integer> n = List.of(Integer.parseInt(m.group(4)), Integer.parseInt(m.group(5)), Integer.parseInt(m.group(6)));
            assertEquals(0, n.get(2), m.group());
            assertTrue(ec ? n.get(0) == 0 && n.get(1) > 0 : n.get(1) == 0 && n.get(0) > 0, m.group());
        }
        assertTrue(rows > 20, "the matrix has a row per exercised cell:\n" + printed);
    }
}

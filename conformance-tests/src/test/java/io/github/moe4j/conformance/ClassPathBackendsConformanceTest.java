package io.github.moe4j.conformance;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import io.github.moe4j.api.Availability;
import io.github.moe4j.api.MoeBackendProvider;
import io.github.moe4j.api.MoeBackends;
import io.github.moe4j.reference.ReferenceBackendProvider;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * Runs the whole contract against every backend provider on the class path except the reference
 * (which {@code certified.ReferenceConformanceTest} covers), one dynamic test each. A provider whose
 * availability is "no" is reported as skipped with its reason, printed and given to JUnit; a class
 * path with no other provider gives one skipped test saying so. Adding moe-opencl or moe-cuda as a
 * test dependency of this module is all it takes to certify them here.
 */
class ClassPathBackendsConformanceTest {

    @TestFactory
    Stream<DynamicTest> everyProviderOnTheClassPathPassesTheContract() {
        List<MoeBackendProvider> others = MoeBackends.providers().stream()
                .filter(p -> !p.name().equals(ReferenceBackendProvider.NAME)).collect(Collectors.toList());
        if (others.isEmpty()) {
            return Stream.of(dynamicTest("no backend besides the reference on the class path", () -> skip(
                    "no moe4j backend provider besides the reference is on this module's test class path")));
        }
        return others.stream().map(p -> dynamicTest(p.name(), () -> certify(p)));
    }

    private static void certify(MoeBackendProvider p) {
        Availability a = p.availability();
        if (!a.available()) {
            skip("backend '" + p.name() + "' is not available here: " + a.reason());
        }
        ProviderUnderCertification.provider = p.name();
        ContractLauncher.Outcome outcome = ContractLauncher.run(ProviderUnderCertification.class);
        StringBuilder failures = new StringBuilder();
        outcome.failures().forEach((name, t) -> failures.append("\n  ").append(name).append(": ").append(t));
        System.out.println("[moe4j conformance] backend '" + p.name() + "': " + outcome.passed() + " properties passed, "
                + outcome.failures().size() + " failed" + (outcome.skipped().isEmpty() ? "" : ", skipped " + outcome.skipped()));
        assertTrue(outcome.failures().isEmpty(), "backend '" + p.name() + "' fails the conformance suite:" + failures);
        assertTrue(outcome.skipped().isEmpty(), "backend '" + p.name() + "' is available but the suite skipped " + outcome.skipped());
    }

    /** Prints the reason and reports the test as skipped (aborted) with it. */
    private static void skip(String reason) {
        System.out.println("[moe4j conformance] SKIPPED: " + reason);
        Assumptions.abort(reason);
    }
}

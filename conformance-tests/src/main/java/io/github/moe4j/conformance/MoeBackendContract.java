package io.github.moe4j.conformance;

import io.github.moe4j.api.Availability;
import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeBackendProvider;
import io.github.moe4j.api.MoeBackends;
import java.util.ArrayList;
import java.util.List;

/**
 * The whole conformance suite: every property a {@link MoeBackend} must satisfy (STYLE §18). A
 * backend author certifies a backend with one class in their tests:
 *
 * <pre>{@code
 * class MyBackendConformanceTest implements MoeBackendContract {
 *     @Override
 *     public MoeBackend backend() {
 *         return MoeBackendContract.forProvider("my-backend");
 *     }
 * }
 * }</pre>
 *
 * and runs it with JUnit 5 (the jqwik engine comes with this jar). The contracts it extends,
 * each usable alone: {@link RoutingContract}, {@link ForwardContract}, {@link BackwardContract},
 * {@link InvariantsContract}, {@link RobustnessContract}, {@link GoldenContract}. The reference
 * passes it in this project's own build ({@code ReferenceConformanceTest}).
 */
public interface MoeBackendContract extends RoutingContract, ForwardContract, BackwardContract, InvariantsContract,
        RobustnessContract, GoldenContract {

    /**
     * Opens the backend of the provider with that name, found by {@link java.util.ServiceLoader}
     * through {@link MoeBackends#providers()}.
     *
     * @throws BackendUnavailableException if the provider says it is not available here (the suite
     *                                     then skips the container, printing the reason)
     * @throws IllegalArgumentException    if no provider has that name, listing the names there are
     */
    static MoeBackend forProvider(String name) {
        List<String> names = new ArrayList<>();
        for (MoeBackendProvider p : MoeBackends.providers()) {
            if (p.name().equals(name)) {
                Availability a = p.availability();
                if (!a.available()) {
                    throw new BackendUnavailableException(name, a.reason());
                }
                return p.open();
            }
            names.add(p.name());
        }
        throw new IllegalArgumentException("no moe4j backend provider named '" + name + "' on the class path; found " + names
                + " (Hint: add the backend's jar as a test dependency; it lists its provider in"
                + " META-INF/services/io.github.moe4j.api.MoeBackendProvider)");
    }
}

package io.github.moe4j.conformance;

import io.github.moe4j.api.MoeBackend;
import net.jqwik.api.lifecycle.AddLifecycleHook;
import net.jqwik.api.lifecycle.PropagationMode;

/**
 * What every contract of the suite needs from the class that runs it: the backend under test and
 * the tolerances it is held to. Implement {@link MoeBackendContract}, which extends every contract;
 * implement a single contract (for example {@link ForwardContract}) to run only its properties.
 *
 * <p>The suite registers {@link ConformanceHook}: it skips the whole container, with the reason
 * printed, when {@link #backend()} throws {@link BackendUnavailableException}; caps tries at
 * {@link #maxTries()}; and prints the coverage matrix after the container.
 */
@AddLifecycleHook(value = ConformanceHook.class, propagateTo = PropagationMode.ALL_DESCENDANTS)
public interface BackendContract {

    /**
     * The backend under test. Called once per container: the suite keeps it and closes it after
     * the container. Throw {@link BackendUnavailableException} (as
     * {@link MoeBackendContract#forProvider(String)} does) to have the container skipped with a
     * reason.
     */
    MoeBackend backend();

    /** The tolerances the backend is held to; override only for a backend computing in a coarser format. */
    default Tolerances tolerances() {
        return Tolerances.FP32;
    }

    /**
     * An upper bound on every property's tries (each property's own count is documented on it).
     * Lower it for a quick run; the suite's own tests lower it to run the contract against
     * deliberately broken backends.
     */
    default int maxTries() {
        return Integer.MAX_VALUE;
    }

    /** Whether the coverage matrix is printed after the container (default yes). */
    default boolean printCoverage() {
        return true;
    }
}

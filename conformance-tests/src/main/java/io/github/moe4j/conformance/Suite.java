package io.github.moe4j.conformance;

import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.Support;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** The suite's shared state and the certification wrapper every property runs its checks in. */
final class Suite {
    private Suite() {}

    /** The backend of each running container, opened once. */
    private static final Map<Class<?>, MoeBackend> BACKENDS = new ConcurrentHashMap<>();

    /** The backend under test of a contract instance, opened once per container. */
    static MoeBackend backend(BackendContract contract) {
        return BACKENDS.computeIfAbsent(contract.getClass(), c -> {
            MoeBackend b = contract.backend();
            if (b == null) {
                throw new IllegalStateException(c.getName() + ".backend() returned null");
            }
            return b;
        });
    }

    /**
     * Opens the backend of a container that is starting, replacing (and closing) whatever an earlier
     * run of the same class left: a late thread of that run (jqwik's bounded shrinking can outlive
     * its timeout) must not hand its backend to this one.
     */
    static MoeBackend open(BackendContract contract) {
        MoeBackend b = contract.backend();
        if (b == null) {
            throw new IllegalStateException(contract.getClass().getName() + ".backend() returned null");
        }
        MoeBackend old = BACKENDS.put(contract.getClass(), b);
        if (old != null && old != b) {
            old.close();
        }
        return b;
    }

    /** Closes and forgets the backend of a container. */
    static void release(Class<?> container) {
        MoeBackend b = BACKENDS.remove(container);
        if (b != null) {
            b.close();
        }
    }

    /** The coverage scope of a container and its backend. */
    static String scope(Class<?> container, MoeBackend backend) {
        return container.getName() + " / backend '" + backend.name() + "' on " + backend.device();
    }

    /** The checks of one property try. */
    @FunctionalInterface
    interface Checks {
        /** Runs the checks against the backend; throws on the first failure. */
        void run(MoeBackend backend) throws Exception;
    }

    /**
     * Runs the checks of one try unless the backend does not support the configuration, and
     * records the outcome in {@link Coverage}. Unsupported comes only from {@link MoeBackend#supports}.
     */
    static void certify(BackendContract contract, MoeConfig config, Coverage.Direction direction, Checks checks) throws Exception {
        MoeBackend backend = backend(contract);
        String scope = scope(contract.getClass(), backend);
        Support support = backend.supports(config);
        if (!runs(support, direction)) {
            Coverage.record(scope, config, direction, Coverage.Outcome.UNSUPPORTED, support.reason());
            return;
        }
        try {
            checks.run(backend);
        } catch (Exception | Error e) {
            Coverage.record(scope, config, direction, Coverage.Outcome.FAILED, "");
            throw e;
        }
        Coverage.record(scope, config, direction, Coverage.Outcome.PASSED, "");
    }

    /**
     * Whether the backend does not support a configuration a property needs besides its main one;
     * if so, records it as unsupported with the reason (so the property's skip is visible).
     */
    static boolean unsupported(BackendContract contract, MoeConfig config, Coverage.Direction direction) {
        MoeBackend backend = backend(contract);
        Support support = backend.supports(config);
        if (!runs(support, direction)) {
            Coverage.record(scope(contract.getClass(), backend), config, direction, Coverage.Outcome.UNSUPPORTED, support.reason());
        }
        return !runs(support, direction);
    }

    /** Whether the backend runs this direction: forward needs {@link Support#supported()}, backward also {@link Support#backward()}. */
    static boolean runs(Support support, Coverage.Direction direction) {
        return support.supported() && (direction != Coverage.Direction.BACKWARD || support.backward());
    }
}

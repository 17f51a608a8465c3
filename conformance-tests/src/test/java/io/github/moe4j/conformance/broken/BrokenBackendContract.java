package io.github.moe4j.conformance.broken;

import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.conformance.MoeBackendContract;

/**
 * The whole contract against the broken backend chosen in {@link #current}; run programmatically by
 * {@link BrokenBackendsAreRejectedTest}, never by Surefire directly (its name matches no include
 * pattern).
 */
public class BrokenBackendContract implements MoeBackendContract {
    /**
     * Tries per property for a broken backend: enough for the generators to reach each bug's
     * trigger (drops, ties, padding, jitter, k at least 2) with near certainty, few enough for
     * sixteen runs of the whole suite to take under a minute. A failing property stops at
     * its first failure.
     */
    static final int TRIES = 200;

    /** The bug under test; set before each launch. */
    static volatile Breakage current;

    @Override
    public MoeBackend backend() {
        return new BrokenBackend(current);
    }

    @Override
    public int maxTries() {
        return TRIES;
    }

    @Override
    public boolean printCoverage() {
        return false;
    }
}

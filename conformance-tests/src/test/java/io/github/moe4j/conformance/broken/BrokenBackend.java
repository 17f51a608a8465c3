package io.github.moe4j.conformance.broken;

import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Support;

/** The reference with one {@link Breakage}: supports everything, like the reference. */
public final class BrokenBackend implements MoeBackend {
    private final Breakage breakage;

    /** @param breakage the bug */
    public BrokenBackend(Breakage breakage) {
        this.breakage = breakage;
    }

    @Override
    public String name() {
        return "broken-" + breakage.name().toLowerCase(java.util.Locale.ROOT).replace('_', '-');
    }

    @Override
    public String device() {
        return "the reference with a deliberate bug: " + breakage;
    }

    @Override
    public Support supports(MoeConfig config) {
        return Support.YES;
    }

    @Override
    public MoeLayer createLayer(MoeConfig config, MoeWeights weights) {
        return new BrokenLayer(breakage, config, weights);
    }

    @Override
    public void close() {
        // nothing to release
    }
}

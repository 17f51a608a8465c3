package io.github.moe4j.conformance;

/** Placeholder replaced below. */
public interface GoldenContract extends BackendContract {
}

package io.github.moe4j.api;

/**
 * A backend's entry point, found by {@link java.util.ServiceLoader}: a jar adds a backend by listing
 * its provider in {@code META-INF/services/io.github.moe4j.api.MoeBackendProvider}.
 */
public interface MoeBackendProvider {

    /** A short lower-case name, e.g. {@code "reference"}. */
    String name();

    /**
     * Higher is preferred by {@link MoeBackends#best()}: a GPU backend on a GPU (300) &gt; moe-cpu (200)
     * &gt; an OpenCL CPU device (100) &gt; the reference (0).
     */
    int priority();

    /** Whether {@link #open()} will work here; cheap and never throws. */
    Availability availability();

    /**
     * Opens the backend.
     *
     * @throws MoeBackendException if it is not available
     */
    MoeBackend open();
}

package io.github.moe4j.api;

/**
 * An opened backend: a device (or the CPU) and what lives on it. Thread-safe; the layers it
 * creates are not. Closing it releases every device resource; closing twice is harmless.
 */
public interface MoeBackend extends AutoCloseable {

    /** The provider's name, e.g. {@code "reference"}, {@code "opencl"}, {@code "cuda"}. */
    String name();

    /** The device actually used, e.g. {@code "pthread-x86_64 (PoCL 3.1)"} or {@code "NVIDIA H100 (sm_90)"}. */
    String device();

    /** Whether this backend runs the configuration, and if not, why. */
    Support supports(MoeConfig config);

    /**
     * A layer with these weights (validated against the configuration; GPU backends upload them once).
     *
     * @throws IllegalArgumentException if the configuration is unsupported or the weights do not fit it
     */
    MoeLayer createLayer(MoeConfig config, MoeWeights weights);

    @Override
    void close();
}

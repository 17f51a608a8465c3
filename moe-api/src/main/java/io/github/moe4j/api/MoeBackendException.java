package io.github.moe4j.api;

/**
 * A device or native failure inside a backend: the message carries the operation, the backend,
 * the device and the native status name (for example {@code CUDA_ERROR_OUT_OF_MEMORY}).
 */
public class MoeBackendException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** @param message the operation, backend, device and native status */
    public MoeBackendException(String message) {
        super(message);
    }

    /**
     * @param message the operation, backend, device and native status
     * @param cause   the underlying failure
     */
    public MoeBackendException(String message, Throwable cause) {
        super(message, cause);
    }
}

package io.github.moe4j.conformance;

import io.github.moe4j.api.MoeBackendException;

/**
 * The backend under test cannot run on this machine (its provider's availability is "no"). The
 * suite reports its container as skipped with the reason, and prints the reason.
 */
public final class BackendUnavailableException extends MoeBackendException {
    private static final long serialVersionUID = 1L;

    private final String backend;
    private final String reason;

    /**
     * @param backend the provider's name
     * @param reason  the provider's reason, e.g. "no OpenCL platform found: install pocl-opencl-icd"
     */
    public BackendUnavailableException(String backend, String reason) {
        super("backend '" + backend + "' is not available here: " + reason);
        this.backend = backend;
        this.reason = reason;
    }

    /** The provider's name. */
    public String backend() {
        return backend;
    }

    /** The provider's reason. */
    public String reason() {
        return reason;
    }
}

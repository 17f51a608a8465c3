package io.github.moe4j.conformance;

import org.opentest4j.AssertionFailedError;

/** A failed check whose message ends with the case that produced it. */
final class AssertionErrorWithCase extends AssertionFailedError {
    private static final long serialVersionUID = 1L;

    AssertionErrorWithCase(String message, Object context) {
        super(message + (context == null ? "" : "\ncase: " + context));
    }
}

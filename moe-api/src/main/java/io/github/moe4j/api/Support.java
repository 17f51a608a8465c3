package io.github.moe4j.api;

/**
 * Whether a backend runs a configuration, forward and backward, and if not, why (the conformance
 * suite reports what is unsupported with this reason; nothing is skipped silently).
 *
 * @param supported whether {@link MoeBackend#createLayer} accepts the configuration and its layers
 *                  run {@link MoeLayer#forward}
 * @param backward  whether those layers also run {@link MoeLayer#backward}; never true when
 *                  {@code supported} is false
 * @param reason    empty when both are supported; otherwise what is missing, in words a user can
 *                  act on
 */
public record Support(boolean supported, boolean backward, String reason) {
    /** Forward and backward are supported. */
    public static final Support YES = new Support(true, true, "");

    public Support {
        Checks.requireNonNull(reason, "reason");
        if (backward && !supported) {
            throw new IllegalArgumentException("backward cannot be supported for a configuration the backend does not run");
        }
        if (!(supported && backward) && reason.isBlank()) {
            throw new IllegalArgumentException("an unsupported pass needs a reason");
        }
    }

    /** Not supported at all, with the reason. */
    public static Support no(String reason) {
        return new Support(false, false, reason);
    }

    /** Forward runs; backward does not, for the reason given. */
    public static Support forwardOnly(String reason) {
        return new Support(true, false, reason);
    }
}

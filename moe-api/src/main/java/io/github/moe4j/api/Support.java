package io.github.moe4j.api;

/**
 * Whether a backend runs a configuration, and if not, why (the conformance suite reports it as
 * unsupported with this reason; nothing is skipped silently).
 *
 * @param supported whether {@link MoeBackend#createLayer} accepts the configuration
 * @param reason    empty when supported
 */
public record Support(boolean supported, String reason) {
    /** Supported. */
    public static final Support YES = new Support(true, "");

    public Support {
        Checks.requireNonNull(reason, "reason");
    }

    /** Not supported, with the reason. */
    public static Support no(String reason) {
        return new Support(false, reason);
    }
}

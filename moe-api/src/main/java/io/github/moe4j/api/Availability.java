package io.github.moe4j.api;

/**
 * Whether a backend can run here, with a one-line reason a user can act on when it cannot
 * (for example "no OpenCL platform found: install pocl-opencl-icd").
 *
 * @param available whether {@link MoeBackendProvider#open()} will succeed
 * @param reason    what was found (the device) when available, what is missing when not
 */
public record Availability(boolean available, String reason) {
    public Availability {
        Checks.requireNonNull(reason, "reason");
    }

    /** Available, on the device described. */
    public static Availability yes(String device) {
        return new Availability(true, device);
    }

    /** Not available, with the reason. */
    public static Availability no(String reason) {
        return new Availability(false, reason);
    }
}

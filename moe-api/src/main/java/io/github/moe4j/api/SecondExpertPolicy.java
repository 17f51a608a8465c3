package io.github.moe4j.api;

/**
 * GShard's policy for the second expert of a top-2 router in training (SPEC §3, research §4.5).
 *
 * @param kind      {@link Kind#ALL} keeps every second choice; {@link Kind#RANDOM} keeps it with
 *                  probability \( \min(1, g_2/\theta) \)
 * @param threshold \( \theta \) for {@link Kind#RANDOM}, in (0, 1]; ignored (0) for {@link Kind#ALL}
 */
public record SecondExpertPolicy(Kind kind, double threshold) {

    /** The two policies. */
    public enum Kind {
        /** Keep every second choice (default; Mesh-TF policy {@code "all"}). */
        ALL,
        /**
         * Keep rank 1 iff \( u_t &lt; g_{t,S_t[1]} / \theta \), \( u_t \sim U[0,1) \) from the seeded
         * noise. Mesh-TF {@code _top_2_gating} with {@code second_policy="random"}.
         */
        RANDOM
    }

    /** Keep every second choice. */
    public static final SecondExpertPolicy ALL = new SecondExpertPolicy(Kind.ALL, 0);

    public SecondExpertPolicy {
        Checks.requireNonNull(kind, "secondExpertPolicy.kind");
        if (kind == Kind.RANDOM) {
            if (!(threshold > 0 && threshold <= 1)) {
                throw new IllegalArgumentException("secondExpertPolicy.threshold must be in (0, 1] for RANDOM, got " + threshold);
            }
        } else if (threshold != 0) {
            throw new IllegalArgumentException("secondExpertPolicy.threshold must be 0 for ALL, got " + threshold);
        }
    }

    /** Keep the second choice with probability min(1, g2/θ) (Mesh-TF default θ = 0.2). */
    public static SecondExpertPolicy random(double threshold) {
        return new SecondExpertPolicy(Kind.RANDOM, threshold);
    }
}

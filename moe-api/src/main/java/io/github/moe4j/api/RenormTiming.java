package io.github.moe4j.api;

/** When {@link GateNormalization#RENORMALIZE} renormalises relative to capacity dropping (SPEC §3). */
public enum RenormTiming {
    /** Over all k selected experts, before any is dropped; a dropped one's share is lost. Mesh-TF, Tutel, Megatron. */
    BEFORE_CAPACITY,
    /**
     * Over the kept subset only, after dropping; a token with nothing kept gets zero gates.
     * DeepSpeed {@code top2gating} and {@code topkgating} ({@code deepspeed/moe/sharded_moe.py}).
     */
    AFTER_CAPACITY
}

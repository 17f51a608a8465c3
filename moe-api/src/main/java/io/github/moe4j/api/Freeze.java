package io.github.moe4j.api;

/**
 * A parameter group that receives no gradient (FLAN-MoE's ablations: Shen et al. 2023,
 * "Mixture-of-Experts Meets Instruction Tuning", §4). The input's gradient stays exact.
 */
public enum Freeze {
    /** The router weight and bias, and the noise weight. */
    ROUTER,
    /** Every expert weight and bias. */
    EXPERTS
}

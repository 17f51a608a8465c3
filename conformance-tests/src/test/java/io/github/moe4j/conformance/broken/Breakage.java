package io.github.moe4j.conformance.broken;

/**
 * One deliberate bug (STYLE §22), with the property of the suite that must reject it. Each is
 * implemented by {@link BrokenLayer} around the reference: the reference run with a modified
 * configuration, or its results post-processed.
 */
public enum Breakage {
    /** Ties go to the higher expert index: the reference run with the expert labels reversed, mapped back. */
    WRONG_TIE_BREAK("exactTiesGoToTheLowerIndex"),
    /** RENORMALIZE gates are not renormalised: the reference run with NONE gates. */
    NO_RENORMALIZATION("gatesMatchTheOracleOnTheBackendsRouting"),
    /** Renormalises over the kept choices (after capacity) where the configuration says before. */
    RENORMALIZES_AFTER_CAPACITY_INSTEAD_OF_BEFORE("gatesMatchTheOracleWhereCapacityDrops"),
    /** Keeps C + 1 assignments per expert while reporting C. */
    CAPACITY_OFF_BY_ONE("capacitySlotsFollowThePriorityRule"),
    /** RANK_MAJOR and TOKEN_MAJOR priority swapped. */
    RANK_MAJOR_AND_TOKEN_MAJOR_SWAPPED("capacitySlotsFollowThePriorityRule"),
    /** A dropped assignment still adds its gate times its expert's output (the output of a dropless run). */
    DROPPED_ASSIGNMENT_NOT_ZERO("droppedAssignmentsContributeExactlyZero"),
    /** The load-balancing loss's f divided by k where it should not be, and not where it should (TOPK_NORMALIZED and TOPK_COUNT swapped). */
    AUX_F_NORMALISED_THE_WRONG_WAY("lossesMatchTheOracleOnTheBackendsRouting"),
    /** The z-loss is mean lse(p)^2 of the probabilities instead of the logits. */
    Z_LOSS_ON_PROBABILITIES("lossesMatchTheOracleOnTheBackendsRouting"),
    /** Jitter reaches the experts too where the configuration says router only. */
    JITTER_FED_TO_THE_EXPERTS("trainingNoiseIsTheOraclesNoise"),
    /** backward leaves out the auxiliary losses' terms (the gradient of sum dY * y only). */
    GRADIENT_MISSING_THE_LOSS_TERMS("gradientsMatchTheOracleOnTheBackendsRouting"),
    /** The losses count padding tokens (the mask is ignored in the losses). */
    PADDING_MASK_IGNORED_IN_THE_LOSSES("lossesMatchTheOracleOnTheBackendsRouting"),
    /** The output differs by one ulp in one element from call to call. */
    OUTPUT_DIFFERS_BETWEEN_IDENTICAL_CALLS("forwardIsBitReproducible"),
    /** The combine ignores the gates (tjake/Jlama#201): y = sum of the kept experts' outputs. */
    UNWEIGHTED_COMBINE("outputMatchesTheOracleOnTheBackendsRouting"),
    /** Inference draws training noise from the seed. */
    NOISE_IN_INFERENCE("inferenceIgnoresTheSeed"),
    /** backward returns gradients for frozen groups too. */
    FROZEN_GROUPS_GET_GRADIENTS("frozenGroupsGetNoGradient"),
    /** NaN and infinities in the input are replaced by 0 instead of rejected. */
    NON_FINITE_INPUT_ACCEPTED("rejectsANonFiniteInput");

    private final String rejectedBy;

    Breakage(String rejectedBy) {
        this.rejectedBy = rejectedBy;
    }

    /** The property of the suite that must fail on this bug. */
    public String rejectedBy() {
        return rejectedBy;
    }

    /** Whether the bug is in the backward pass (so rejecting it needs the reference's backward). */
    public boolean inBackward() {
        return this == GRADIENT_MISSING_THE_LOSS_TERMS || this == FROZEN_GROUPS_GET_GRADIENTS;
    }
}

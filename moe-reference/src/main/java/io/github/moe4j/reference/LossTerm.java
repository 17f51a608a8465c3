package io.github.moe4j.reference;

/**
 * One auxiliary loss of {@link io.github.moe4j.api.MoeLosses}, named to take its gradient alone and
 * unweighted ({@link ReferenceLayer#lossGradients}, {@link ReferenceLayer#logitGradient}).
 */
public enum LossTerm {
    /** \( L_{aux} = E \sum_i f_i P_i \) ({@link LoadBalancingLoss}); token-choice routers only. */
    AUX,
    /** \( L_z = \operatorname{mean}_t \operatorname{lse}(z_t)^2 \) ({@link RouterZLoss}); every router. */
    Z,
    /** \( \mathrm{cv}^2(\mathrm{Importance}) \) ({@link ImportanceLoss}); noisy top-k only. */
    IMPORTANCE,
    /** \( \mathrm{cv}^2(\mathrm{Load}) \) ({@link LoadLoss}); noisy top-k only, no gradient where Load is a count. */
    LOAD
}

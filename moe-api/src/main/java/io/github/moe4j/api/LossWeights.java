package io.github.moe4j.api;

/**
 * The coefficients of the auxiliary losses in the weighted total (SPEC §5):
 * \( \alpha L_{aux} + \beta L_z + w_{imp} L_{imp} + w_{load} L_{load} \). Each coefficient is
 * finite and at least 0; a zero coefficient still reports its loss in {@link MoeLosses} but
 * contributes nothing to the total or to the gradients.
 *
 * @param aux              \( \alpha \), the load-balancing loss coefficient
 * @param auxNormalization what \( f_i \) counts
 * @param z                \( \beta \), the router z-loss coefficient
 * @param importance       \( w_{imp} \) for the noisy top-k importance loss
 * @param load             \( w_{load} \) for the noisy top-k load loss
 */
public record LossWeights(double aux, AuxNormalization auxNormalization, double z, double importance, double load) {

    public LossWeights {
        Checks.requireNonNegativeFinite(aux, "losses.aux");
        Checks.requireNonNull(auxNormalization, "losses.auxNormalization");
        Checks.requireNonNegativeFinite(z, "losses.z");
        Checks.requireNonNegativeFinite(importance, "losses.importance");
        Checks.requireNonNegativeFinite(load, "losses.load");
    }

    /** All coefficients zero, {@link AuxNormalization#TOPK_NORMALIZED}. */
    public static LossWeights of() {
        return new LossWeights(0, AuxNormalization.TOPK_NORMALIZED, 0, 0, 0);
    }

    /** A copy with \( \alpha \). */
    public LossWeights aux(double alpha) {
        return new LossWeights(alpha, auxNormalization, z, importance, load);
    }

    /** A copy with \( \alpha \) and the f convention. */
    public LossWeights aux(double alpha, AuxNormalization normalization) {
        return new LossWeights(alpha, normalization, z, importance, load);
    }

    /** A copy with \( \beta \). */
    public LossWeights z(double beta) {
        return new LossWeights(aux, auxNormalization, beta, importance, load);
    }

    /** A copy with the importance coefficient. */
    public LossWeights importance(double w) {
        return new LossWeights(aux, auxNormalization, z, w, load);
    }

    /** A copy with the load coefficient. */
    public LossWeights load(double w) {
        return new LossWeights(aux, auxNormalization, z, importance, w);
    }
}

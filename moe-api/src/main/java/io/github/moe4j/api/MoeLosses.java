package io.github.moe4j.api;

/**
 * The auxiliary losses of one call, each unweighted, and their weighted total (SPEC §5):
 * {@code total = α·aux + β·z + w_imp·importance + w_load·load}. A loss the router does not define
 * is 0.
 *
 * @param aux        \( L_{aux} / \alpha = E \sum_i f_i P_i \), averaged over groups
 * @param z          \( L_z / \beta = \operatorname{mean}_t \operatorname{lse}(z_t)^2 \), averaged over groups
 * @param importance \( \mathrm{cv}^2(\mathrm{Importance}) \) (noisy top-k), averaged over groups
 * @param load       \( \mathrm{cv}^2(\mathrm{Load}) \) (noisy top-k), averaged over groups
 * @param total      the weighted sum
 */
public record MoeLosses(double aux, double z, double importance, double load, double total) {

    /** Weighs the four losses with a configuration's coefficients. */
    public static MoeLosses weighted(double aux, double z, double importance, double load, LossWeights w) {
        return new MoeLosses(aux, z, importance, load,
                w.aux() * aux + w.z() * z + w.importance() * importance + w.load() * load);
    }
}

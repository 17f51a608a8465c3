package io.github.moe4j.reference;

/**
 * The squared coefficient of variation of tensor2tensor's {@code cv_squared}, population variance:
 * \( n = \mathrm{size} + 10^{-10} \), \( \mu = \sum v / n \), \( \mathrm{var} = \sum (v - \mu)^2 / n \),
 * \( \mathrm{cv}^2 = \mathrm{var} / (\mu^2 + 10^{-10}) \).
 *
 * Mirrors tensorflow/tensor2tensor {@code tensor2tensor/utils/expert_utils.py} {@code cv_squared}.
 */
public final class CoefficientOfVariation {
    private static final double EPSILON = 1e-10;

    private CoefficientOfVariation() {}

    /** \( \mathrm{cv}^2(v) \). */
    public static double squared(double[] v) {
        double n = v.length + EPSILON;
        double sum = 0;
        for (double x : v) {
            sum += x;
        }
        double mean = sum / n;
        double var = 0;
        for (double x : v) {
            var += (x - mean) * (x - mean);
        }
        var /= n;
        return var / (mean * mean + EPSILON);
    }

    /**
     * Backward of {@link #squared}: \( \partial \mathrm{cv}^2 / \partial v_i \) times {@code dCv}, with n, \( \mu \)
     * and var as in the forward (n is not the count, so \( \sum_j (v_j - \mu) \) is kept, not taken as 0):
     * \( \partial \mathrm{var} / \partial v_i = \tfrac{2}{n} \big((v_i - \mu) - \tfrac{1}{n} \sum_j (v_j - \mu)\big) \),
     * \( \partial \mathrm{cv}^2 / \partial v_i = \dfrac{\partial \mathrm{var} / \partial v_i}{\mu^2 + 10^{-10}}
     * - \dfrac{\mathrm{var} \cdot 2 \mu / n}{(\mu^2 + 10^{-10})^2} \).
     *
     * @param v    the values the forward saw
     * @param dCv  the upstream gradient of \( \mathrm{cv}^2 \)
     * @return \( \partial L / \partial v \)
     */
    public static double[] squaredBackward(double[] v, double dCv) {
        double n = v.length + EPSILON;
        double sum = 0;
        for (double x : v) {
            sum += x;
        }
        double mean = sum / n;
        double var = 0;
        double deviations = 0;
        for (double x : v) {
            var += (x - mean) * (x - mean);
            deviations += x - mean;
        }
        var /= n;
        double denominator = mean * mean + EPSILON;
        double[] dV = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            // forward: var = Σ (v − mean)² / n with mean = Σ v / n;  return var / (mean² + 1e-10)
            double dVar = 2 / n * ((v[i] - mean) - deviations / n);
            double dMean = 1 / n;
            dV[i] = dCv * (dVar / denominator - var * 2 * mean * dMean / (denominator * denominator));
        }
        return dV;
    }
}

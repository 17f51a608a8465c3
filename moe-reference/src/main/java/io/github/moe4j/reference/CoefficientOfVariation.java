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
}

package io.github.moe4j.reference;

/**
 * What the router computed for one call, in double, [T, E] row-major unless said otherwise; owned
 * by this object, do not modify.
 *
 * @param routerInput  \( \tilde{x} \), [T, d]: x, or x times the jitter multipliers
 * @param expertInput  what the experts receive, [T, d]: x, or \( \tilde{x} \) with jitter fed to the experts
 * @param logits       z, the logits before logit noise (noisy top-k: the clean logits)
 * @param probs        \( p = \operatorname{softmax}(z) \)
 * @param keys         the selection keys: H for noisy top-k, else z
 * @param rawNoiseStd  \( x W_{noise} \), or null
 * @param noiseStd     \( \sigma \), or null (no learned noise, or inference)
 * @param noise        \( \varepsilon \), or null
 * @param probInTopK   the smooth load contributions P(t, i), or null where Load is a count
 * @param secondExpertUniform [T] uniforms of GShard's random policy, or null
 * @param realTokens   [T] whether each token is real (not padding)
 * @param jitter       [T, d] the jitter multipliers u with \( \tilde{x} = x \odot u \), or null (no jitter); backward needs them
 */
public record RouterOutput(double[] routerInput, double[] expertInput, double[] logits, double[] probs, double[] keys,
                           double[] rawNoiseStd, double[] noiseStd, double[] noise, double[] probInTopK,
                           double[] secondExpertUniform, boolean[] realTokens,
                           double[] jitter) {

    /** The real tokens of group g (tokens [g·groupSize, (g + 1)·groupSize)), in token order. */
    public int[] realTokens(int g, int groupSize) {
        int n = 0;
        for (int t = g * groupSize; t < (g + 1) * groupSize; t++) {
            n += realTokens[t] ? 1 : 0;
        }
        int[] real = new int[n];
        for (int t = g * groupSize, i = 0; t < (g + 1) * groupSize; t++) {
            if (realTokens[t]) {
                real[i++] = t;
            }
        }
        return real;
    }
}

package io.github.moe4j.reference;

import io.github.moe4j.api.Freeze;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeGradients;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.Tensor;
import java.util.Set;

/**
 * The reference's gradients in double (SPEC §10), in the layout of {@link ReferenceWeights}: one
 * array per input and parameter, {@code null} where the component is absent from the weights or
 * belongs to a frozen group. Arrays are owned by this object.
 *
 * @param input       \( \partial L / \partial x \), [T, d]; never null
 * @param router      \( \partial L / \partial W_r \), [d, E]
 * @param routerBias  \( \partial L / \partial b_r \), [E]
 * @param noiseRouter \( \partial L / \partial W_{noise} \), [d, E]
 * @param wIn         \( \partial L / \partial W_{in} \), [E, d, h]
 * @param wGate       \( \partial L / \partial W_{gate} \), [E, d, h]
 * @param wOut        \( \partial L / \partial W_{out} \), [E, h, d]
 * @param bIn         \( \partial L / \partial b_{in} \), [E, h]
 * @param bOut        \( \partial L / \partial b_{out} \), [E, d]
 * @param work        how much weight-gradient work was done, so that frozen groups can be seen to skip theirs
 */
public record ReferenceGradients(double[] input, double[] router, double[] routerBias, double[] noiseRouter,
                                 double[] wIn, double[] wGate, double[] wOut, double[] bIn, double[] bOut, Work work) {

    /**
     * Multiply-adds spent accumulating parameter gradients (not the input's), by group. A frozen
     * group's count is 0: its weight-gradient work is skipped, not computed and dropped.
     *
     * @param expertWeightMultiplyAdds into W_in, W_gate, W_out, b_in, b_out
     * @param routerWeightMultiplyAdds into W_r, b_r, W_noise
     */
    public record Work(long expertWeightMultiplyAdds, long routerWeightMultiplyAdds) {
        /** No work. */
        public static final Work NONE = new Work(0, 0);

        /** The sum of two counts. */
        public Work plus(Work other) {
            return new Work(expertWeightMultiplyAdds + other.expertWeightMultiplyAdds,
                    routerWeightMultiplyAdds + other.routerWeightMultiplyAdds);
        }
    }

    /**
     * Zero gradients for a call of {@code tokens} tokens: an array for the input and for every
     * component the configuration has and {@code frozen} does not name, null for the rest.
     */
    static ReferenceGradients zeros(MoeConfig config, int tokens, Set<Freeze> frozen) {
        int d = config.modelDim();
        int h = config.hiddenDim();
        int e = config.experts();
        boolean router = !frozen.contains(Freeze.ROUTER);
        boolean experts = !frozen.contains(Freeze.EXPERTS);
        boolean learnedNoise = config.router() instanceof NoisyTopKRouterConfig n && n.noise() == NoisyTopKRouterConfig.Noise.LEARNED;
        return new ReferenceGradients(new double[tokens * d],
                router ? new double[d * e] : null,
                router && config.routerBias() ? new double[e] : null,
                router && learnedNoise ? new double[d * e] : null,
                experts ? new double[e * d * h] : null,
                experts && config.activation().isGated() ? new double[e * d * h] : null,
                experts ? new double[e * h * d] : null,
                experts && config.expertBias() ? new double[e * h] : null,
                experts && config.expertBias() ? new double[e * d] : null,
                Work.NONE);
    }

    /** A copy holding the same arrays with another work count. */
    ReferenceGradients withWork(Work w) {
        return new ReferenceGradients(input, router, routerBias, noiseRouter, wIn, wGate, wOut, bIn, bOut, w);
    }

    /** The float32 API form: each array rounded to float with its shape; nulls stay null. */
    public MoeGradients toMoeGradients(MoeConfig config) {
        int d = config.modelDim();
        int h = config.hiddenDim();
        int e = config.experts();
        return new MoeGradients(Tensor.ofDoubles(input, input.length / d, d), tensor(router, d, e), tensor(routerBias, e),
                tensor(noiseRouter, d, e), tensor(wIn, e, d, h), tensor(wGate, e, d, h), tensor(wOut, e, h, d),
                tensor(bIn, e, h), tensor(bOut, e, d));
    }

    private static Tensor tensor(double[] a, int... shape) {
        return a == null ? null : Tensor.ofDoubles(a, shape);
    }
}

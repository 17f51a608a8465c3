package io.github.moe4j.reference;

import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Tensor;

/**
 * The layer's weights widened to double, in the layout of {@link MoeWeights}: router [d, E],
 * routerBias [E], noiseRouter [d, E], wIn and wGate [E, d, h], wOut [E, h, d], bIn [E, h],
 * bOut [E, d]. Absent components are null. Arrays are owned by this object; do not modify them.
 *
 * @param d           model dim
 * @param h           hidden dim
 * @param experts     E
 * @param router      \( W_r \)
 * @param routerBias  \( b_r \) or null
 * @param noiseRouter \( W_{noise} \) or null
 * @param wIn         \( W_{in} \)
 * @param wGate       \( W_{gate} \) or null
 * @param wOut        \( W_{out} \)
 * @param bIn         \( b_{in} \) or null
 * @param bOut        \( b_{out} \) or null
 */
public record ReferenceWeights(int d, int h, int experts, double[] router, double[] routerBias, double[] noiseRouter,
                               double[] wIn, double[] wGate, double[] wOut, double[] bIn, double[] bOut) {

    /**
     * Checks presence and length of every component against a configuration.
     *
     * @throws IllegalArgumentException naming the component, its length and the expected length
     */
    public ReferenceWeights validate(MoeConfig config) {
        int e = config.experts();
        int dd = config.modelDim();
        int hh = config.hiddenDim();
        if (d != dd || h != hh || experts != e) {
            throw new IllegalArgumentException("weights are for d=" + d + ", h=" + h + ", E=" + experts + " but the configuration has d="
                    + dd + ", h=" + hh + ", E=" + e);
        }
        boolean learnedNoise = config.router() instanceof io.github.moe4j.api.NoisyTopKRouterConfig n
                && n.noise() == io.github.moe4j.api.NoisyTopKRouterConfig.Noise.LEARNED;
        check(router, "router", true, dd * e);
        check(routerBias, "routerBias", config.routerBias(), e);
        check(noiseRouter, "noiseRouter", learnedNoise, dd * e);
        check(wIn, "wIn", true, e * dd * hh);
        check(wGate, "wGate", config.activation().isGated(), e * dd * hh);
        check(wOut, "wOut", true, e * hh * dd);
        check(bIn, "bIn", config.expertBias(), e * hh);
        check(bOut, "bOut", config.expertBias(), e * dd);
        return this;
    }

    private static void check(double[] a, String name, boolean required, int length) {
        if (required != (a != null)) {
            throw new IllegalArgumentException("weights." + name + (required ? " is missing" : " is present but unused by the configuration"));
        }
        if (a != null && a.length != length) {
            throw new IllegalArgumentException("weights." + name + " has " + a.length + " values, expected " + length);
        }
        if (a != null) {
            for (int i = 0; i < a.length; i++) {
                if (!Double.isFinite(a[i])) {
                    throw new io.github.moe4j.api.NonFiniteException("weights." + name, i, new int[] {length}, a[i]);
                }
            }
        }
    }

    /** Widens validated float32 weights. */
    public static ReferenceWeights of(MoeConfig config, MoeWeights w) {
        w.validate(config);
        return new ReferenceWeights(config.modelDim(), config.hiddenDim(), config.experts(), widen(w.router()),
                widen(w.routerBias()), widen(w.noiseRouter()), widen(w.wIn()), widen(w.wGate()), widen(w.wOut()),
                widen(w.bIn()), widen(w.bOut()));
    }

    private static double[] widen(Tensor t) {
        return t == null ? null : t.toDoubleArray();
    }
}

package io.github.moe4j.reference;

import io.github.moe4j.api.GateNormalization;
import io.github.moe4j.api.RenormTiming;
import io.github.moe4j.api.TokenChoiceRouterConfig;

/**
 * Token-choice top-k selection and gates (SPEC §3). Each token takes the k experts with the largest
 * logits, best first, ties to the lower expert index ({@link TopK}); its gates are either the full
 * softmax probabilities ({@link GateNormalization#NONE}) or the softmax over the selected logits
 * ({@link GateNormalization#RENORMALIZE}), the latter before or after capacity dropping.
 *
 * <pre>
 * Fedus, W., Zoph, B., Shazeer, N. "Switch Transformers." JMLR 2022. arXiv:2101.03961, eq. (1)–(2).
 * Lepikhin, D. et al. "GShard." ICLR 2021. arXiv:2006.16668, Algorithm 2.
 * </pre>
 * Mirrors Hugging Face {@code SwitchTransformersTop1Router} (NONE), {@code MixtralTopKRouter}
 * (RENORMALIZE), DeepSpeed {@code top2gating}/{@code topkgating} (RENORMALIZE after capacity).
 */
public final class TokenChoiceRouter {
    private TokenChoiceRouter() {}

    /** \( S_t \): the k best experts of the row {@code z[offset .. offset + E)}, best first. */
    public static int[] select(double[] z, int offset, int experts, int k) {
        return TopK.ofRow(z, offset, experts, k);
    }

    /**
     * Gates before any assignment is dropped: \( p_{t,e} \) for NONE, the softmax over the selected
     * logits for RENORMALIZE.
     *
     * @param z        logits row at {@code offset}, [E]
     * @param p        probabilities row at {@code offset}, [E]
     * @param selected \( S_t \), best first
     */
    public static double[] gatesBeforeCapacity(GateNormalization gates, double[] z, double[] p, int offset, int[] selected) {
        if (gates == GateNormalization.NONE) {
            double[] g = new double[selected.length];
            for (int j = 0; j < selected.length; j++) {
                g[j] = p[offset + selected[j]];
            }
            return g;
        }
        return Softmax.overSubset(z, offset, selected);
    }

    /**
     * The combine weights once dropping is known: a dropped choice has gate 0; with
     * {@link RenormTiming#AFTER_CAPACITY} the kept choices are renormalised among themselves
     * (DeepSpeed {@code top2gating}: {@code gates1_s / (gates1_s + gates2_s)}), and a token with
     * nothing kept gets all zeros.
     *
     * @param kept whether each selected choice was kept
     */
    public static double[] gatesAfterCapacity(TokenChoiceRouterConfig router, double[] z, double[] p, int offset,
                                              int[] selected, boolean[] kept) {
        double[] g = new double[selected.length];
        if (router.gates() == GateNormalization.RENORMALIZE && router.renormTiming() == RenormTiming.AFTER_CAPACITY) {
            int n = 0;
            for (boolean b : kept) {
                n += b ? 1 : 0;
            }
            int[] keptExperts = new int[n];
            int[] position = new int[n];
            for (int j = 0, m = 0; j < selected.length; j++) {
                if (kept[j]) {
                    keptExperts[m] = selected[j];
                    position[m++] = j;
                }
            }
            double[] renormalised = Softmax.overSubset(z, offset, keptExperts);
            for (int m = 0; m < n; m++) {
                g[position[m]] = renormalised[m];
            }
            return g;
        }
        double[] before = gatesBeforeCapacity(router.gates(), z, p, offset, selected);
        for (int j = 0; j < selected.length; j++) {
            g[j] = kept[j] ? before[j] : 0;
        }
        return g;
    }

    /**
     * Backward of {@link #gatesAfterCapacity} (selection and dropping are constants, SPEC §10), given
     * \( \partial L / \partial g \) of one token's combine weights:
     * <ul>
     * <li>{@link GateNormalization#NONE}: \( g_j = p_{t,S_j} \) for a kept choice, so
     *     \( \partial L / \partial p_{t,S_j} \mathrel{+}= \partial L / \partial g_j \); through the full softmax every
     *     logit of the token then receives gradient (the caller applies {@link Softmax#softmaxBackward});</li>
     * <li>{@link GateNormalization#RENORMALIZE} before capacity: the gates are the softmax over all selected
     *     logits, a dropped one's gate zeroed, so only the selected logits receive gradient;</li>
     * <li>{@link GateNormalization#RENORMALIZE} after capacity: the softmax over the kept logits, so only the
     *     kept ones receive gradient.</li>
     * </ul>
     * A dropped choice's gate is the constant 0: its upstream gradient is ignored.
     *
     * @param selected   \( S_t \), best first
     * @param kept       whether each selected choice was kept
     * @param gateBefore the token's gates before capacity ({@link #gatesBeforeCapacity})
     * @param gateAfter  the token's combine weights ({@link #gatesAfterCapacity})
     * @param dGate      \( \partial L / \partial g \), one per choice
     * @param dLogits    accumulates \( \partial L / \partial z \) (RENORMALIZE), row at {@code offset}
     * @param dProbs     accumulates \( \partial L / \partial p \) (NONE), row at {@code offset}
     */
    public static void gatesAfterCapacityBackward(TokenChoiceRouterConfig router, int offset, int[] selected, boolean[] kept,
                                                  double[] gateBefore, double[] gateAfter, double[] dGate,
                                                  double[] dLogits, double[] dProbs) {
        if (router.gates() == GateNormalization.NONE) {
            // forward: g[j] = kept[j] ? p[offset + selected[j]] : 0
            for (int j = 0; j < selected.length; j++) {
                if (kept[j]) {
                    dProbs[offset + selected[j]] += dGate[j];
                }
            }
            return;
        }
        if (router.renormTiming() == RenormTiming.AFTER_CAPACITY) {
            // forward: renormalised = Softmax.overSubset(z, offset, keptExperts); g[position[m]] = renormalised[m]
            int n = 0;
            for (boolean b : kept) {
                n += b ? 1 : 0;
            }
            int[] keptExperts = new int[n];
            double[] g = new double[n];
            double[] dG = new double[n];
            for (int j = 0, m = 0; j < selected.length; j++) {
                if (kept[j]) {
                    keptExperts[m] = selected[j];
                    g[m] = gateAfter[j];
                    dG[m++] = dGate[j];
                }
            }
            Softmax.overSubsetBackward(g, keptExperts, dG, dLogits, offset);
            return;
        }
        // forward: before = Softmax.overSubset(z, offset, selected); g[j] = kept[j] ? before[j] : 0
        double[] dBefore = new double[selected.length];
        for (int j = 0; j < selected.length; j++) {
            dBefore[j] = kept[j] ? dGate[j] : 0;
        }
        Softmax.overSubsetBackward(gateBefore, selected, dBefore, dLogits, offset);
    }

    /**
     * GShard's random second-expert policy (Mesh-TF {@code _top_2_gating}, policy {@code "random"}):
     * keep rank 1 iff \( u_t &lt; g_{t,S_t[1]} / \theta \).
     *
     * @param secondGate the renormalised gate of rank 1 (before capacity)
     * @param uniform    \( u_t \in [0, 1) \)
     * @param threshold  \( \theta \)
     */
    public static boolean keepsSecondExpert(double secondGate, double uniform, double threshold) {
        return uniform < secondGate / threshold;
    }
}

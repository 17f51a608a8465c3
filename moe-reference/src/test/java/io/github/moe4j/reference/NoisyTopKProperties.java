package io.github.moe4j.reference;

import static io.github.moe4j.reference.ReferenceCases.RouterKind.NOISY_TOP_K;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.github.moe4j.api.LossWeights;
import io.github.moe4j.api.Mode;
import io.github.moe4j.api.Noise;
import io.github.moe4j.api.NoisyTopKRouterConfig;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import io.github.moe4j.reference.ReferenceCases.CapacityKind;
import java.util.EnumSet;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.statistics.Statistics;

/** Noisy top-k gating (SPEC §6; Shazeer et al. 2017, tensor2tensor {@code noisy_top_k_gating}). */
class NoisyTopKProperties {

    @Provide
    Arbitrary<MoeCase> noisyCases() {
        return ReferenceCases.cases(NOISY_TOP_K);
    }

    /** Noisy top-k with learned noise, k < E, in training: the smooth load estimator is in use. */
    @Provide
    Arbitrary<MoeCase> smoothLoadCases() {
        return noisyCases().filter(c -> c.experts() >= 2).flatMap(c -> Arbitraries.integers().between(1, c.experts() - 1).map(k -> {
            NoisyTopKRouterConfig n = (NoisyTopKRouterConfig) c.config().router();
            return c.withConfig(c.config().toBuilder().routerBias(false)
                    .router(new NoisyTopKRouterConfig(k, NoisyTopKRouterConfig.Noise.LEARNED, n.noiseEpsilon())).build()).withMode(Mode.TRAINING);
        }));
    }

    /** With learned noise in training H = z + ε ⊙ (softplus(x W_noise) + ε₀), ε from moe-api's noise; otherwise H = z. */
    @Property(tries = 200)
    void noisyLogitsAreCleanLogitsPlusScaledNoise(@ForAll("noisyCases") MoeCase c) {
        NoisyTopKRouterConfig n = (NoisyTopKRouterConfig) c.config().router();
        boolean noisy = c.mode() == Mode.TRAINING && n.noise() == NoisyTopKRouterConfig.Noise.LEARNED;
        Statistics.label("noise drawn").collect(noisy);
        ReferenceForward f = c.forward();
        ReferenceWeights w = c.weights();
        int e = c.experts();
        double[] x = c.input();
        double[] z = NaiveMoe.logits(x, c.tokens(), c.d(), w.router(), w.routerBias(), e);
        Compare.close("clean logits", z, f.router().logits(), Compare.REORDERED, c);
        if (!noisy) {
            Compare.bitwise("keys without noise are the clean logits", f.router().logits(), f.router().keys(), c);
            assertNull(f.router().noiseStd(), "no σ without noise; " + c);
            return;
        }
        Tensor eps = Noise.draw(c.config(), c.tokens(), c.seed(), c.step()).logitNoise();
        double[] raw = NaiveMoe.logits(x, c.tokens(), c.d(), w.noiseRouter(), null, e);
        double[] sigma = new double[raw.length];
        double[] h = new double[raw.length];
        for (int i = 0; i < raw.length; i++) {
            sigma[i] = NaiveMoe.softplus(raw[i]) + n.noiseEpsilon();
            h[i] = z[i] + eps.get(i) * sigma[i];
        }
        Compare.close("σ", sigma, f.router().noiseStd(), Compare.REORDERED, c);
        Compare.close("H", h, f.router().keys(), Compare.REORDERED, c);
    }

    /** Per group Load_i = Σ_t Φ((clean_{t,i} − thr_{t,i})/σ_{t,i}) and Importance_i = Σ_t G_{t,i}, and the losses are their cv² averaged over groups. */
    @Property(tries = 200)
    void smoothLoadIsTheSumOfNormalCdfsAtTheThreshold(@ForAll("smoothLoadCases") MoeCase c) {
        // thr_{t,i} is the (k+1)-th largest H_t if i is in the top k of H_t, else the k-th.
        ReferenceCases.collectRouterAndCapacity(c, EnumSet.of(NOISY_TOP_K), EnumSet.allOf(CapacityKind.class), 4);
        ReferenceForward f = c.forward();
        int e = c.experts();
        int k = c.k();
        double[] clean = f.router().logits();
        double[] h = f.router().keys();
        double[] sigma = f.router().noiseStd();
        double[] wantLoad = new double[c.groups() * e];
        double[] wantImportance = new double[c.groups() * e];
        for (int g = 0; g < c.groups(); g++) {
            for (int t : c.realTokens(g)) {
                int[] rank = NaiveMoe.ranking(NaiveMoe.row(h, t, e));
                double inThreshold = h[t * e + rank[k]];
                double outThreshold = h[t * e + rank[k - 1]];
                for (int r = 0; r < e; r++) {
                    int i = rank[r];
                    double thr = r < k ? inThreshold : outThreshold;
                    wantLoad[g * e + i] += NaiveMoe.phi((clean[t * e + i] - thr) / sigma[t * e + i]);
                }
                int[] top = java.util.Arrays.copyOf(rank, k);
                double[] gates = NaiveMoe.softmaxOver(NaiveMoe.row(h, t, e), top);
                for (int j = 0; j < k; j++) {
                    wantImportance[g * e + top[j]] += gates[j];
                }
            }
        }
        Compare.close("Load [G, E]", wantLoad, f.loadVector(), Compare.NORMAL_CDF, c);
        Compare.close("Importance [G, E]", wantImportance, f.importance(), Compare.REORDERED, c);
        double loadLoss = 0;
        double importanceLoss = 0;
        for (int g = 0; g < c.groups(); g++) {
            loadLoss += NaiveMoe.cvSquared(java.util.Arrays.copyOfRange(f.loadVector(), g * e, (g + 1) * e)) / c.groups();
            importanceLoss += NaiveMoe.cvSquared(java.util.Arrays.copyOfRange(wantImportance, g * e, (g + 1) * e)) / c.groups();
        }
        Compare.close("L_load = mean over groups of cv²(Load)", loadLoss, f.losses().load(), Compare.REORDERED, c);
        Compare.close("L_importance", importanceLoss, f.losses().importance(), Compare.REORDERED, c);
    }

    /** Without noise, noisy top-k routes, gates and outputs like token-choice top-k with RENORMALIZE gates before capacity. */
    @Property(tries = 200)
    void noisyTopKWithoutNoiseEqualsRenormalizedTopK(@ForAll("noisyCases") MoeCase noisyCase) {
        NoisyTopKRouterConfig n = (NoisyTopKRouterConfig) noisyCase.config().router();
        MoeCase c = n.noise() == NoisyTopKRouterConfig.Noise.LEARNED ? noisyCase.withMode(Mode.INFERENCE) : noisyCase;
        Statistics.label("noise").collect(n.noise() + " " + c.mode());
        ReferenceForward noisy = c.forward();
        ReferenceWeights w = c.weights();
        ReferenceWeights plainWeights = new ReferenceWeights(w.d(), w.h(), w.experts(), w.router(), w.routerBias(), null,
                w.wIn(), w.wGate(), w.wOut(), w.bIn(), w.bOut());
        ReferenceLayer plain = new ReferenceLayer(c.config().toBuilder().router(TokenChoiceRouterConfig.topK(n.k()))
                .losses(LossWeights.of().z(c.config().losses().z())).build(), plainWeights);
        ReferenceForward topK = plain.forward(c.input(), c.tokens(), c.options());
        Compare.exactly("selection", topK.plan().selected(), noisy.plan().selected(), c);
        Compare.exactly("slots", topK.plan().slot(), noisy.plan().slot(), c);
        Compare.close("gates", topK.plan().gate(), noisy.plan().gate(), Compare.REORDERED, c);
        Compare.close("y", topK.y(), noisy.y(), Compare.REORDERED, c);
        Compare.close("L_z", topK.losses().z(), noisy.losses().z(), Compare.REORDERED, c);
        assertEquals(noisy.plan().capacity(), topK.plan().capacity(), "capacity; " + c);
    }
}

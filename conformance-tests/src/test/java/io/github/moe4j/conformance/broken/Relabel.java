package io.github.moe4j.conformance.broken;

import io.github.moe4j.api.ExpertChoiceRouterConfig;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeGradients;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Routing;
import io.github.moe4j.api.Tensor;

/**
 * Expert e becomes expert E - 1 - e: the same layer with its experts listed in reverse, so that a
 * tie goes to the originally higher index. Weights are relabelled on the way in, routing and
 * gradients on the way out.
 */
final class Relabel {
    private Relabel() {}

    static MoeWeights weights(MoeWeights w, MoeConfig c) {
        return new MoeWeights(columns(w.router()), vector(w.routerBias()), columns(w.noiseRouter()), blocks(w.wIn()), blocks(w.wGate()),
                blocks(w.wOut()), blocks(w.bIn()), blocks(w.bOut()));
    }

    static MoeGradients gradients(MoeGradients g, MoeConfig c) {
        return new MoeGradients(g.input(), columns(g.router()), vector(g.routerBias()), columns(g.noiseRouter()), blocks(g.wIn()),
                blocks(g.wGate()), blocks(g.wOut()), blocks(g.bIn()), blocks(g.bOut()));
    }

    static Routing routing(Routing r, MoeConfig c) {
        int t = r.tokens();
        int m = r.choicesPerToken();
        int e = r.experts();
        boolean ec = c.router() instanceof ExpertChoiceRouterConfig;
        int[] ex = new int[t * m];
        float[] gate = new float[t * m];
        int[] slot = new int[t * m];
        for (int i = 0; i < t; i++) {
            for (int j = 0; j < m; j++) {
                int from = ec ? e - 1 - j : j;
                int x = r.expert(i, from);
                ex[i * m + j] = x < 0 ? -1 : e - 1 - x;
                gate[i * m + j] = r.gate(i, from);
                slot[i * m + j] = r.slot(i, from);
            }
        }
        return new Routing(t, e, m, r.groups(), r.capacity(), ex, gate, slot, reversed(r.load()), reversed(r.kept()));
    }

    private static int[] reversed(int[] a) {
        int[] b = new int[a.length];
        for (int i = 0; i < a.length; i++) {
            b[i] = a[a.length - 1 - i];
        }
        return b;
    }

    /** [rows, E] with its columns reversed. */
    private static Tensor columns(Tensor t) {
        if (t == null) {
            return null;
        }
        int rows = t.dim(0);
        int e = t.dim(1);
        float[] a = t.toArray();
        float[] b = new float[a.length];
        for (int r = 0; r < rows; r++) {
            for (int x = 0; x < e; x++) {
                b[r * e + x] = a[r * e + e - 1 - x];
            }
        }
        return Tensor.of(b, t.shape());
    }

    private static Tensor vector(Tensor t) {
        if (t == null) {
            return null;
        }
        float[] a = t.toArray();
        float[] b = new float[a.length];
        for (int i = 0; i < a.length; i++) {
            b[i] = a[a.length - 1 - i];
        }
        return Tensor.of(b, t.shape());
    }

    /** [E, ...] with the expert blocks reversed. */
    private static Tensor blocks(Tensor t) {
        if (t == null) {
            return null;
        }
        int e = t.dim(0);
        int block = e == 0 ? 0 : t.size() / e;
        float[] a = t.toArray();
        float[] b = new float[a.length];
        for (int x = 0; x < e; x++) {
            System.arraycopy(a, (e - 1 - x) * block, b, x * block, block);
        }
        return Tensor.of(b, t.shape());
    }
}

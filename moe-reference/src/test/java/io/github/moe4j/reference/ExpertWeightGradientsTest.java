package io.github.moe4j.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeWeights;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * {@link ExpertNetwork}'s loops take one weight row at a time across all of an expert's rows. Every
 * sum must keep the order it has for one row: the forward and backward of many rows equal, bit for
 * bit, those of each row alone, and {@link ExpertNetwork#weightGradients} equals the row-by-row
 * accumulation \( dW \mathrel{+}= x_r\, (\partial L / \partial a_r)^\top \) written out here.
 */
class ExpertWeightGradientsTest {

    @ParameterizedTest
    @EnumSource(value = Activation.class, names = {"RELU", "SWIGLU", "GEGLU"})
    void manyRowsAtOnceEqualEachRowAloneBitForBit(Activation kind) {
        int d = 7;
        int h = 11;
        int n = 9;
        MoeConfig config = MoeConfig.builder().modelDim(d).hiddenDim(h).experts(3).activation(kind).expertBias(true).build();
        ReferenceWeights w = ReferenceWeights.of(config, MoeWeights.random(config, 2));
        SplittableRandom rnd = new SplittableRandom(5);
        double[] x = new double[3 + n * d];
        double[][] dOut = new double[n][d];
        int[] dxOffset = new int[n];
        for (int i = 0; i < x.length; i++) {
            x[i] = rnd.nextDouble() * 2 - 1;
        }
        for (int r = 0; r < n; r++) {
            for (int j = 0; j < d; j++) {
                dOut[r][j] = rnd.nextDouble() * 2 - 1;
            }
            dxOffset[r] = (n - 1 - r) * d; // rows scattered back in another order
        }
        ExpertNetwork.Activations[] together = ExpertNetwork.forward(w, kind, 2, x, 3, n);
        double[] dXTogether = new double[n * d];
        ExpertNetwork.RowGradient[] gTogether = ExpertNetwork.backward(w, kind, 2, together, dOut, dXTogether, dxOffset);
        double[] dXAlone = new double[n * d];
        for (int r = 0; r < n; r++) {
            ExpertNetwork.Activations alone = ExpertNetwork.forward(w, kind, 2, x, 3 + r * d);
            assertArrayEquals(alone.preActivation(), together[r].preActivation(), "a of row " + r);
            assertArrayEquals(alone.hidden(), together[r].hidden(), "hidden of row " + r);
            assertArrayEquals(alone.output(), together[r].output(), "output of row " + r);
            ExpertNetwork.RowGradient g = ExpertNetwork.backward(w, kind, 2, alone, dOut[r], dXAlone, dxOffset[r]);
            assertArrayEquals(g.dA(), gTogether[r].dA(), "dA of row " + r);
            if (kind.isGated()) {
                assertArrayEquals(g.dB(), gTogether[r].dB(), "dB of row " + r);
            }
        }
        assertArrayEquals(dXAlone, dXTogether, "dx");
    }

    @ParameterizedTest
    @EnumSource(value = Activation.class, names = {"RELU", "SWIGLU", "GEGLU"})
    void equalsTheRowByRowAccumulationBitForBit(Activation kind) {
        int d = 7;
        int h = 11;
        int experts = 3;
        int e = 1;
        MoeConfig config = MoeConfig.builder().modelDim(d).hiddenDim(h).experts(experts).activation(kind).expertBias(true).build();
        ReferenceWeights w = ReferenceWeights.of(config, MoeWeights.random(config, 2));
        SplittableRandom rnd = new SplittableRandom(4);
        int n = 9;
        double[] x = new double[n * d];
        for (int i = 0; i < x.length; i++) {
            x[i] = rnd.nextDouble() * 2 - 1;
        }
        ExpertNetwork.Activations[] cache = new ExpertNetwork.Activations[n];
        ExpertNetwork.RowGradient[] rows = new ExpertNetwork.RowGradient[n];
        for (int r = 0; r < n; r++) {
            cache[r] = ExpertNetwork.forward(w, kind, e, x, r * d);
            double[] dOut = new double[d];
            for (int j = 0; j < d; j++) {
                dOut[j] = rnd.nextDouble() * 2 - 1;
            }
            rows[r] = ExpertNetwork.backward(w, kind, e, cache[r], dOut, new double[d], 0);
        }
        ReferenceGradients blocked = ReferenceGradients.zeros(config, n, Set.of());
        long work = ExpertNetwork.weightGradients(w, e, x, cache, rows, blocked);

        double[] wIn = new double[experts * d * h];
        double[] wGate = new double[experts * d * h];
        double[] wOut = new double[experts * h * d];
        double[] bIn = new double[experts * h];
        double[] bOut = new double[experts * d];
        for (int r = 0; r < n; r++) {
            for (int i = 0; i < h; i++) {
                for (int j = 0; j < d; j++) {
                    wOut[(e * h + i) * d + j] += cache[r].hidden()[i] * rows[r].dOutput()[j];
                }
            }
            for (int j = 0; j < d; j++) {
                bOut[e * d + j] += rows[r].dOutput()[j];
                for (int i = 0; i < h; i++) {
                    wIn[(e * d + j) * h + i] += x[r * d + j] * rows[r].dA()[i];
                    if (kind.isGated()) {
                        wGate[(e * d + j) * h + i] += x[r * d + j] * rows[r].dB()[i];
                    }
                }
            }
            for (int i = 0; i < h; i++) {
                bIn[e * h + i] += rows[r].dA()[i];
            }
        }
        assertArrayEquals(wOut, blocked.wOut(), "dW_out");
        assertArrayEquals(wIn, blocked.wIn(), "dW_in");
        if (kind.isGated()) {
            assertArrayEquals(wGate, blocked.wGate(), "dW_gate");
        }
        assertArrayEquals(bIn, blocked.bIn(), "db_in");
        assertArrayEquals(bOut, blocked.bOut(), "db_out");
        assertEquals((long) n * (h * d + d * h * (kind.isGated() ? 2 : 1) + d + h), work, "multiply-adds");
    }
}

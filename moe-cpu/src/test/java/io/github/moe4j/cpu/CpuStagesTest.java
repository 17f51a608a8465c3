package io.github.moe4j.cpu;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Presets;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.reference.ReferenceLayer;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** {@link CpuStages}: the stages, run one by one and again, give the layer's forward output bit for bit. */
class CpuStagesTest {

    @Test
    void theStagesGiveTheForwardsOutputBitForBitAndCanBeRunAgain() {
        MoeConfig c = Presets.mixtral().modelDim(24).hiddenDim(40).experts(6).build();
        MoeWeights w = MoeWeights.random(c, 3);
        SplittableRandom rnd = new SplittableRandom(4);
        float[] v = new float[900 * 24];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) rnd.nextGaussian();
        }
        Tensor x = Tensor.of(v, 900, 24);
        try (CpuBackend b = new CpuBackend(2); MoeLayer layer = b.createLayer(c, w);
             MoeForward f = layer.forward(x, ForwardOptions.inference())) {
            CpuStages stages = new CpuStages(layer, x, ForwardOptions.inference());
            float[] want = f.output().toArray();
            assertTrue(Arrays.equals(want, stages.combine().toArray()), "combine after the constructor's stages");
            stages.router();
            stages.dispatch();
            stages.experts();
            stages.experts();
            assertTrue(Arrays.equals(want, stages.combine().toArray()), "every stage run again");
        }
    }

    @Test
    void rejectsALayerOfAnotherBackendAWrongInputAndAClosedLayer() {
        MoeConfig c = Presets.mixtral().modelDim(8).hiddenDim(8).experts(4).build();
        MoeWeights w = MoeWeights.random(c, 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new CpuStages(new ReferenceLayer(c, w), Tensor.zeros(3, 8), ForwardOptions.inference()));
        assertTrue(e.getMessage().contains("CpuBackend"), e.getMessage());
        try (CpuBackend b = new CpuBackend(1); MoeLayer layer = b.createLayer(c, w)) {
            e = assertThrows(IllegalArgumentException.class, () -> new CpuStages(layer, Tensor.zeros(3, 7), ForwardOptions.inference()));
            assertTrue(e.getMessage().contains("input"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> new CpuStages(layer, Tensor.zeros(24), ForwardOptions.inference()));
            assertTrue(e.getMessage().contains("[tokens, modelDim]"), e.getMessage());
            layer.close();
            assertThrows(IllegalStateException.class, () -> new CpuStages(layer, Tensor.zeros(3, 8), ForwardOptions.inference()));
        }
    }
}

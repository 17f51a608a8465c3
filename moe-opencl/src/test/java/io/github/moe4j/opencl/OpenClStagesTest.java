package io.github.moe4j.opencl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Presets;
import io.github.moe4j.api.Priority;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.opencl.OpenClStages.Stage;
import io.github.moe4j.reference.ReferenceLayer;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** {@link OpenClStages}: a run through a stage launches exactly the phases up to it, and a run through the combine gives the forward's output. */
class OpenClStagesTest {

    private static Tensor random(long seed, int tokens, int d) {
        SplittableRandom rnd = new SplittableRandom(seed);
        float[] v = new float[tokens * d];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) rnd.nextGaussian();
        }
        return Tensor.of(v, tokens, d);
    }

    @Test
    void aRunThroughTheCombineGivesTheForwardsOutputAndAnEarlierStageLeavesTheOutputAlone() {
        MoeConfig c = Presets.mixtral().modelDim(24).hiddenDim(40).experts(6).build();
        Tensor x = random(4, 300, 24);
        Tensor other = random(5, 300, 24);
        try (MoeLayer layer = OpenClTestSupport.backend().createLayer(c, MoeWeights.random(c, 3))) {
            float[] want;
            float[] otherOutput;
            try (MoeForward f = layer.forward(x, ForwardOptions.inference())) {
                want = f.output().toArray();
            }
            OpenClStages stages = new OpenClStages(layer, x, ForwardOptions.inference());
            try (MoeForward f = layer.forward(other, ForwardOptions.inference())) {
                otherOutput = f.output().toArray(); // the device's output now holds another input's
            }
            assertFalse(Arrays.equals(want, otherOutput), "the two inputs must give different outputs");
            stages.runThrough(Stage.ROUTER);
            stages.runThrough(Stage.DISPATCH);
            stages.runThrough(Stage.EXPERTS);
            assertArrayEquals(otherOutput, stages.output().toArray(), "a run through the experts must not reach the combine");
            stages.runThrough(Stage.COMBINE);
            assertArrayEquals(want, stages.output().toArray(), "a run through the combine");
            stages.runThrough(Stage.COMBINE);
            assertArrayEquals(want, stages.output().toArray(), "a second run through the combine");
        }
    }

    @Test
    void eachStageEndsAtItsLastPhase() {
        MoeConfig c = Presets.mixtral().modelDim(8).hiddenDim(8).experts(4).build();
        MoeConfig byGate = Presets.switchTop1().modelDim(8).hiddenDim(8).experts(4).priority(Priority.GATE_VALUE).build();
        try (OpenClLayer layer = (OpenClLayer) OpenClTestSupport.backend().createLayer(c, MoeWeights.random(c, 1));
             OpenClLayer gate = (OpenClLayer) OpenClTestSupport.backend().createLayer(byGate, MoeWeights.random(byGate, 1))) {
            assertArrayEquals(new int[] {MoeLayerKernel.ROUTER, MoeLayerKernel.SELECT, MoeLayerKernel.POSITION},
                    layer.phasesThrough(Stage.ROUTER));
            assertArrayEquals(new int[] {MoeLayerKernel.ROUTER, MoeLayerKernel.SELECT, MoeLayerKernel.POSITION, MoeLayerKernel.RENUMBER},
                    gate.phasesThrough(Stage.ROUTER));
            int[] combine = layer.phasesThrough(Stage.COMBINE);
            assertArrayEquals(new int[] {MoeLayerKernel.ROUTER, MoeLayerKernel.SELECT, MoeLayerKernel.POSITION, MoeLayerKernel.COUNT,
                    MoeLayerKernel.OFFSETS, MoeLayerKernel.DISPATCH, MoeLayerKernel.EXPERT_IN, MoeLayerKernel.EXPERT_OUT,
                    MoeLayerKernel.COMBINE}, combine);
            assertArrayEquals(Arrays.copyOf(combine, 6), layer.phasesThrough(Stage.DISPATCH));
            assertArrayEquals(Arrays.copyOf(combine, 8), layer.phasesThrough(Stage.EXPERTS));
        }
    }

    @Test
    void rejectsALayerOfAnotherBackendAndAnEmptyInput() {
        MoeConfig c = Presets.mixtral().modelDim(8).hiddenDim(8).experts(4).build();
        MoeWeights w = MoeWeights.random(c, 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new OpenClStages(new ReferenceLayer(c, w), Tensor.zeros(3, 8), ForwardOptions.inference()));
        assertTrue(e.getMessage().contains("OpenCL backend"), e.getMessage());
        try (MoeLayer layer = OpenClTestSupport.backend().createLayer(c, w)) {
            e = assertThrows(IllegalArgumentException.class, () -> new OpenClStages(layer, Tensor.zeros(0, 8), ForwardOptions.inference()));
            assertTrue(e.getMessage().contains("0 tokens"), e.getMessage());
        }
    }
}

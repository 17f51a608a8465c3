package io.github.moe4j.api;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** Each preset carries the conventions of SPEC §9's table. */
class PresetsTest {

    private static MoeConfig sized(MoeConfig.Builder b) {
        return b.modelDim(8).hiddenDim(16).experts(8).build();
    }

    private static TokenChoiceRouterConfig router(MoeConfig c) {
        return (TokenChoiceRouterConfig) c.router();
    }

    @Test
    void switchTop1() {
        MoeConfig c = sized(Presets.switchTop1());
        assertEquals(1, c.topK());
        assertEquals(GateNormalization.NONE, router(c).gates());
        assertEquals(new Capacity.Factor(1.25, CapacityBase.TOKENS, Rounding.FLOOR, 4), c.capacity());
        assertEquals(Priority.RANK_MAJOR, c.priority());
        assertEquals(new LossWeights(0.01, AuxNormalization.TOP1, 0, 0, 0), c.losses());
        assertEquals(0.01, router(c).jitter());
        assertEquals(TokenChoiceRouterConfig.JitterTarget.ROUTER_ONLY, router(c).jitterTarget());
    }

    @Test
    void gshardTop2() {
        MoeConfig c = sized(Presets.gshardTop2());
        assertEquals(2, c.topK());
        assertEquals(GateNormalization.RENORMALIZE, router(c).gates());
        assertEquals(RenormTiming.BEFORE_CAPACITY, router(c).renormTiming());
        assertEquals(CapacityBase.ASSIGNMENTS, ((Capacity.Factor) c.capacity()).base());
        assertEquals(Rounding.CEIL, ((Capacity.Factor) c.capacity()).rounding());
        assertEquals(4, ((Capacity.Factor) c.capacity()).minCapacity());
        assertEquals(new LossWeights(0.01, AuxNormalization.TOP1, 0, 0, 0), c.losses());
    }

    @Test
    void stMoe() {
        MoeConfig c = sized(Presets.stMoe());
        assertEquals(2, c.topK());
        assertEquals(GateNormalization.NONE, router(c).gates());
        assertEquals(new Capacity.Factor(1.25, CapacityBase.TOKENS, Rounding.ROUND_HALF_EVEN, 4), c.capacity());
        assertEquals(new LossWeights(0.01, AuxNormalization.TOPK_COUNT, 0.001, 0, 0), c.losses());
        assertEquals(Activation.GEGLU, c.activation());
    }

    @Test
    void mixtral() {
        MoeConfig c = sized(Presets.mixtral());
        assertEquals(2, c.topK());
        assertEquals(GateNormalization.RENORMALIZE, router(c).gates());
        assertEquals(new Capacity.Dropless(), c.capacity());
        assertEquals(new LossWeights(0.001, AuxNormalization.TOPK_COUNT, 0, 0, 0), c.losses());
        assertEquals(Activation.SWIGLU, c.activation());
    }

    @Test
    void deepSpeed() {
        MoeConfig one = sized(Presets.deepSpeedTop1());
        assertEquals(GateNormalization.NONE, router(one).gates());
        assertEquals(AuxNormalization.TOP1, one.losses().auxNormalization());
        MoeConfig two = sized(Presets.deepSpeedTop2());
        assertEquals(RenormTiming.AFTER_CAPACITY, router(two).renormTiming());
        assertEquals(Priority.RANK_MAJOR, two.priority());
        assertEquals(AuxNormalization.TOP1, two.losses().auxNormalization());
        MoeConfig k = sized(Presets.deepSpeedTopK(3));
        assertEquals(3, k.topK());
        assertEquals(RenormTiming.AFTER_CAPACITY, router(k).renormTiming());
        assertEquals(Priority.GATE_VALUE, k.priority());
        assertEquals(AuxNormalization.TOPK_NORMALIZED, k.losses().auxNormalization());
        for (MoeConfig c : new MoeConfig[] {one, two, k}) {
            assertEquals(new Capacity.Factor(1.0, CapacityBase.ASSIGNMENTS, Rounding.CEIL, 4), c.capacity());
            assertEquals(0.01, c.losses().aux());
        }
    }

    @Test
    void shazeerNoisyTopK() {
        MoeConfig c = sized(Presets.shazeerNoisyTopK(2));
        assertEquals(NoisyTopKRouterConfig.of(2), c.router());
        assertEquals(new Capacity.Dropless(), c.capacity());
        assertEquals(new LossWeights(0, AuxNormalization.TOPK_NORMALIZED, 0, 0.01, 0.01), c.losses());
    }

    @Test
    void expertChoice() {
        MoeConfig c = sized(Presets.expertChoice(2.0));
        assertEquals(new ExpertChoiceRouterConfig(), c.router());
        assertEquals(new Capacity.Factor(2.0, CapacityBase.TOKENS, Rounding.CEIL, 1), c.capacity());
        assertEquals(4, c.capacityPerExpert(16));
        assertEquals(8, c.choicesPerToken());
    }
}

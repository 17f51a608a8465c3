package io.github.moe4j.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

class MoeConfigTest {

    private static MoeConfig.Builder valid() {
        return MoeConfig.builder().modelDim(8).hiddenDim(16).experts(4);
    }

    /** Each bad field, and the words its message must contain: the field's name and the value. */
    static Stream<Arguments> badFields() {
        return Stream.of(
                Arguments.of((Consumer<MoeConfig.Builder>) b -> b.modelDim(0), "modelDim", "0"),
                Arguments.of((Consumer<MoeConfig.Builder>) b -> b.hiddenDim(-3), "hiddenDim", "-3"),
                Arguments.of((Consumer<MoeConfig.Builder>) b -> b.experts(0), "experts", "0"),
                Arguments.of((Consumer<MoeConfig.Builder>) b -> b.router(TokenChoiceRouterConfig.topK(5)), "router.k", "5"),
                Arguments.of((Consumer<MoeConfig.Builder>) b -> b.router(NoisyTopKRouterConfig.of(7)), "router.k", "7"),
                Arguments.of((Consumer<MoeConfig.Builder>) b -> b.activation(null), "activation", "null"),
                Arguments.of((Consumer<MoeConfig.Builder>) b -> b.capacity(null), "capacity", "null"),
                Arguments.of((Consumer<MoeConfig.Builder>) b -> b.router(new ExpertChoiceRouterConfig()), "Dropless", "expert-choice"),
                Arguments.of((Consumer<MoeConfig.Builder>) b -> b.router(new ExpertChoiceRouterConfig())
                        .capacity(Capacity.fixed(2)).losses(LossWeights.of().aux(0.01)), "losses.aux", "0.01"),
                Arguments.of((Consumer<MoeConfig.Builder>) b -> b.losses(LossWeights.of().importance(0.5)), "losses.importance", "0.5"),
                Arguments.of((Consumer<MoeConfig.Builder>) b -> b.router(NoisyTopKRouterConfig.of(2)).losses(LossWeights.of().aux(0.1)),
                        "losses.aux", "noisy"));
    }

    @ParameterizedTest
    @MethodSource("badFields")
    void rejectsBadFieldNamingFieldAndValue(Consumer<MoeConfig.Builder> change, String field, String value) {
        MoeConfig.Builder b = valid();
        change.accept(b);
        Exception e = assertThrows(RuntimeException.class, b::build);
        assertTrue(e instanceof IllegalArgumentException || e instanceof NullPointerException, e.toString());
        assertTrue(e.getMessage().contains(field), "message names " + field + ": " + e.getMessage());
        assertTrue(e.getMessage().contains(value), "message names " + value + ": " + e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(doubles = {0, -1, Double.NaN, Double.POSITIVE_INFINITY})
    void rejectsCapacityFactorThatIsNotStrictlyPositiveAndFinite(double factor) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Capacity.factor(factor));
        assertEquals("capacity.factor is not strictly positive and finite: " + factor, e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(doubles = {-0.1, Double.NaN, Double.POSITIVE_INFINITY})
    void rejectsLossCoefficientThatIsNegativeOrNotFinite(double coefficient) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LossWeights.of().z(coefficient));
        assertEquals("losses.z is not non-negative and finite: " + coefficient, e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(doubles = {-0.01, 1.0, Double.NaN})
    void rejectsJitterOutsideZeroToOne(double epsilon) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TokenChoiceRouterConfig.topK(1).withJitter(epsilon, TokenChoiceRouterConfig.JitterTarget.ROUTER_ONLY));
        assertTrue(e.getMessage().startsWith("router.jitter must be in [0, 1), got " + epsilon), e.getMessage());
    }

    @Test
    void rejectsRandomSecondExpertPolicyUnlessTopTwoRenormalized() {
        assertThrows(IllegalArgumentException.class,
                () -> TokenChoiceRouterConfig.topK(3).withSecondExpertPolicy(SecondExpertPolicy.random(0.2)));
        assertThrows(IllegalArgumentException.class,
                () -> TokenChoiceRouterConfig.topK(2).withGates(GateNormalization.NONE).withSecondExpertPolicy(SecondExpertPolicy.random(0.2)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SecondExpertPolicy.random(0));
        assertTrue(e.getMessage().contains("(0, 1]"), e.getMessage());
    }

    @Test
    void toBuilderRoundTrips() {
        MoeConfig c = Presets.stMoe().modelDim(8).hiddenDim(16).experts(4).build();
        assertEquals(c, c.toBuilder().build());
    }
}

package io.github.moe4j.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class NoiseTest {
    private static final MoeConfig SWITCH = Presets.switchTop1().modelDim(6).hiddenDim(4).experts(4).build();
    private static final MoeConfig NOISY = Presets.shazeerNoisyTopK(2).modelDim(6).hiddenDim(4).experts(5).build();
    private static final MoeConfig GSHARD_RANDOM = Presets.gshardTop2().modelDim(6).hiddenDim(4).experts(4)
            .router(TokenChoiceRouterConfig.topK(2).withSecondExpertPolicy(SecondExpertPolicy.random(0.2))).build();

    @Test
    void sameSeedAndStepGiveTheSameNoise() {
        assertEquals(Noise.draw(NOISY, 7, 42, 3), Noise.draw(NOISY, 7, 42, 3));
        assertEquals(Noise.draw(SWITCH, 7, 42, 3), Noise.draw(SWITCH, 7, 42, 3));
    }

    @Test
    void anotherStepOrSeedGivesOtherNoise() {
        assertNotEquals(Noise.draw(NOISY, 7, 42, 3).logitNoise(), Noise.draw(NOISY, 7, 42, 4).logitNoise());
        assertNotEquals(Noise.draw(NOISY, 7, 42, 3).logitNoise(), Noise.draw(NOISY, 7, 43, 3).logitNoise());
    }

    @Test
    void drawsOnlyWhatTheConfigurationUses() {
        RouterNoise s = Noise.draw(SWITCH, 5, 1, 0);
        assertEquals(5 * 6, s.jitter().size());
        assertNull(s.logitNoise());
        assertNull(s.secondExpertUniform());
        RouterNoise n = Noise.draw(NOISY, 5, 1, 0);
        assertNull(n.jitter());
        assertEquals(5 * 5, n.logitNoise().size());
        RouterNoise g = Noise.draw(GSHARD_RANDOM, 5, 1, 0);
        assertEquals(5, g.secondExpertUniform().size());
        MoeConfig plain = Presets.mixtral().modelDim(6).hiddenDim(4).experts(4).build();
        assertEquals(RouterNoise.NONE, Noise.draw(plain, 5, 1, 0));
    }

    @Test
    void jitterStaysWithinOnePlusMinusEpsilonAndUniformsInZeroOne() {
        float[] u = Noise.draw(SWITCH, 200, 9, 0).jitter().toArray();
        for (float v : u) {
            assertTrue(v >= 1 - 0.01f - 1e-7f && v <= 1 + 0.01f + 1e-7f, "jitter multiplier " + v);
        }
        for (float v : Noise.draw(GSHARD_RANDOM, 200, 9, 0).secondExpertUniform().toArray()) {
            assertTrue(v >= 0 && v < 1, "uniform " + v);
        }
    }

    /**
     * The logit noise is standard normal: over 4000 draws the sample mean lies within 4 standard
     * errors (0.063) of 0 and the sample variance within 0.12 of 1; a correct generator fails this
     * with probability below 1e-4.
     */
    @Test
    void logitNoiseIsStandardNormal() {
        MoeConfig wide = Presets.shazeerNoisyTopK(2).modelDim(2).hiddenDim(2).experts(40).build();
        float[] eps = Noise.draw(wide, 100, 11, 0).logitNoise().toArray();
        double mean = 0;
        for (float v : eps) {
            mean += v;
        }
        mean /= eps.length;
        double var = 0;
        for (float v : eps) {
            var += (v - mean) * (v - mean);
        }
        var /= eps.length - 1;
        assertEquals(0, mean, 4 / Math.sqrt(eps.length));
        assertEquals(1, var, 0.12);
    }

    /**
     * The first draws of a stream are as random as the rest: a generator seeded with the raw
     * (seed, step, stream) words gave uniforms near 1e-12 for its first tokens, so GShard's random
     * policy always kept their second expert. Over 64 small seeds and steps, the first uniform of
     * each stream must not all sit in [0, 0.01): a uniform generator puts 64 first draws there with
     * probability 1e-128; and their mean must be within 0.2 of 1/2 (probability of failure below 1e-6).
     */
    @Test
    void firstDrawsOfEveryStreamAreUniform() {
        double sum = 0;
        int small = 0;
        for (int seed = 0; seed < 8; seed++) {
            for (int step = 0; step < 8; step++) {
                float u = Noise.draw(GSHARD_RANDOM, 1, seed, step).secondExpertUniform().get(0);
                sum += u;
                small += u < 0.01 ? 1 : 0;
            }
        }
        assertTrue(small < 64, "every first uniform was below 0.01");
        assertEquals(0.5, sum / 64, 0.2);
    }

    @Test
    void inferenceDrawsNothingAndRefusesSuppliedNoise() {
        assertSame(RouterNoise.NONE, ForwardOptions.inference().noiseFor(NOISY, 4));
        assertThrows(IllegalArgumentException.class, () -> new ForwardOptions(Mode.INFERENCE, 1, 0, 1, null, RouterNoise.NONE));
    }

    @Test
    void suppliedNoiseIsCheckedAgainstTheCall() {
        RouterNoise wrong = new RouterNoise(null, Tensor.zeros(3, 5), null);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ForwardOptions.training(1, 0).withNoise(wrong).noiseFor(NOISY, 4));
        assertEquals("noise.logitNoise has shape [3, 5] but [tokens, experts] = [4, 5] was expected", e.getMessage());
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
                () -> ForwardOptions.training(1, 0).withNoise(RouterNoise.NONE).noiseFor(NOISY, 4));
        assertTrue(missing.getMessage().startsWith("noise.logitNoise is missing"), missing.getMessage());
    }
}

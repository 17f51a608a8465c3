package io.github.moe4j.api;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class CapacityTest {

    /** C = min(T, max(min, round(cf · (k or 1) · T / E))) in exact decimal arithmetic (SPEC §4). */
    @ParameterizedTest(name = "cf={0} base={1} {2} min={3} T={4} E={5} k={6} -> C={7}")
    @CsvSource({
        // the four codebases of research §4.1's example T=4, E=4, k=2, cf=1.0
        "1.0,  ASSIGNMENTS, CEIL,            0, 4,  4, 2, 2",   // DeepSpeed top-k, Megatron
        "1.0,  TOKENS,      ROUND_HALF_EVEN, 4, 4,  4, 2, 4",   // flaxformer: round(1) = 1, then min 4, then min(T)
        "1.0,  TOKENS,      FLOOR,           4, 4,  4, 2, 4",   // Mesh-TF
        // rounding modes on 2.5 and 3.5
        "1.25, TOKENS,      CEIL,            0, 8,  4, 1, 3",
        "1.25, TOKENS,      FLOOR,           0, 8,  4, 1, 2",
        "1.25, TOKENS,      ROUND_HALF_EVEN, 0, 8,  4, 1, 2",
        "1.75, TOKENS,      ROUND_HALF_EVEN, 0, 8,  4, 1, 4",
        // exact arithmetic: 1.1 * 10 / 11 is exactly 1 (a float product gives 1.0000000000000002)
        "1.1,  TOKENS,      CEIL,            0, 10, 11, 1, 1",
        // never more than T
        "8.0,  ASSIGNMENTS, CEIL,            0, 5,  2, 2, 5",
        // the minimum applies before the clamp to T
        "0.1,  TOKENS,      CEIL,            3, 16, 4, 1, 3",
    })
    void factorCapacityFollowsTheFormula(double cf, CapacityBase base, Rounding rounding, int min, int tokens, int experts, int k, int expected) {
        assertEquals(expected, Capacity.factor(cf, base, rounding, min).perExpert(tokens, experts, k));
    }

    @Test
    void fixedCapacityIsClampedToTokens() {
        assertEquals(3, Capacity.fixed(3).perExpert(10, 4, 1));
        assertEquals(2, Capacity.fixed(3).perExpert(2, 4, 1));
        assertEquals(0, Capacity.fixed(0).perExpert(2, 4, 1));
    }

    @Test
    void droplessIsUnlimited() {
        assertEquals(Routing.UNLIMITED, Capacity.dropless().perExpert(10, 4, 2));
    }
}

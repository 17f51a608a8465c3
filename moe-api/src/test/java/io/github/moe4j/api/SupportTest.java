package io.github.moe4j.api;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class SupportTest {

    @Test
    void forwardOnlyRunsForwardAndSaysWhyNotBackward() {
        Support s = Support.forwardOnly("no backward kernels yet");
        assertTrue(s.supported());
        assertFalse(s.backward());
        assertTrue(s.reason().contains("backward"));
    }

    @Test
    void backwardWithoutForwardIsRejected() {
        assertThrows(IllegalArgumentException.class, () -> new Support(false, true, "x"));
    }

    @Test
    void anUnsupportedPassNeedsAReason() {
        assertThrows(IllegalArgumentException.class, () -> Support.no(" "));
        assertThrows(IllegalArgumentException.class, () -> Support.forwardOnly(""));
    }
}

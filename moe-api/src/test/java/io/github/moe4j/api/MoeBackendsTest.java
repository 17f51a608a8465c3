package io.github.moe4j.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** moe-api alone has no backend: discovery says so instead of failing obscurely. */
class MoeBackendsTest {

    @Test
    void noProviderMeansAClearErrorWithAHint() {
        assertEquals(0, MoeBackends.providers().size());
        MoeBackendException e = assertThrows(MoeBackendException.class, MoeBackends::best);
        assertTrue(e.getMessage().contains("Hint: add moe-reference"), e.getMessage());
    }

    @Test
    void unknownNameListsTheNamesThereAre() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> MoeBackends.open("cuda"));
        assertEquals("no backend named 'cuda' on the class path; found []", e.getMessage());
    }

    @Test
    void optionsRejectGroupsThatDoNotDivideTheTokensAndMasksThatAreNotBinary() {
        IllegalArgumentException g = assertThrows(IllegalArgumentException.class, () -> ForwardOptions.inference().withGroups(3).validate(8));
        assertEquals("groups = 3 must divide the number of tokens 8", g.getMessage());
        IllegalArgumentException m = assertThrows(IllegalArgumentException.class,
                () -> ForwardOptions.inference().withPaddingMask(Tensor.of(new float[] {1, 0.5f}, 2)).validate(2));
        assertEquals("paddingMask[1] = 0.5 must be 0 (padding) or 1 (real token)", m.getMessage());
    }
}

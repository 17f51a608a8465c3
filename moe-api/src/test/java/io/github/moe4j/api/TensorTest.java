package io.github.moe4j.api;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class TensorTest {

    @Test
    void rejectsDataWhoseLengthIsNotTheProductOfTheShape() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tensor.of(new float[5], 2, 3));
        assertEquals("data has 5 elements but shape [2, 3] needs 6", e.getMessage());
    }

    @Test
    void rejectsNegativeDimension() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tensor.zeros(2, -1));
        assertEquals("shape [2, -1] has a negative dimension at axis 1", e.getMessage());
    }

    @Test
    void copiesDataInAndOut() {
        float[] data = {1, 2, 3, 4};
        Tensor t = Tensor.of(data, 2, 2);
        data[0] = 99;
        float[] out = t.toArray();
        out[1] = 99;
        assertEquals(1f, t.get(0, 0));
        assertEquals(2f, t.get(0, 1));
        assertEquals(4f, t.get(3));
    }

    @Test
    void adoptTakesTheArrayWithoutACopyAndChecksTheShape() {
        float[] data = {1, 2, 3, 4};
        Tensor t = Tensor.adopt(data, 2, 2);
        data[3] = 99; // what a caller must not do: it shows the array is the tensor's own
        assertEquals(99f, t.get(1, 1));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tensor.adopt(new float[5], 2, 3));
        assertEquals("data has 5 elements but shape [2, 3] needs 6", e.getMessage());
    }

    @Test
    void equalityIsByShapeAndBits() {
        assertEquals(Tensor.of(new float[] {1, 2}, 2), Tensor.of(new float[] {1, 2}, 2));
        assertNotEquals(Tensor.of(new float[] {1, 2}, 2), Tensor.of(new float[] {1, 2}, 1, 2));
        assertNotEquals(Tensor.of(new float[] {0f}, 1), Tensor.of(new float[] {-0f}, 1));
    }

    @Test
    void requireShapeNamesBothShapes() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Tensor.zeros(3, 5).requireShape("input", "[tokens, modelDim]", 3, 4));
        assertEquals("input has shape [3, 5] but [tokens, modelDim] = [3, 4] was expected", e.getMessage());
    }

    @Test
    void requireFiniteNamesTheTensorAndTheCoordinates() {
        float[] data = new float[6];
        data[4] = Float.NaN;
        NonFiniteException e = assertThrows(NonFiniteException.class, () -> Tensor.of(data, 2, 3).requireFinite("input"));
        assertEquals("input has a non-finite value NaN at [1, 1] (flat index 4, shape [2, 3])", e.getMessage());
        assertEquals(4, e.flatIndex());
    }

    @Test
    void zeroSizedTensorsAreAllowed() {
        Tensor t = Tensor.zeros(0, 8);
        assertEquals(0, t.size());
        assertArrayEquals(new int[] {0, 8}, t.shape());
    }
}

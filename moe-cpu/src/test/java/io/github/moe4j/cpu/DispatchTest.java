package io.github.moe4j.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@link Dispatch#rowBlocks}: the fewest blocks per expert, of near-equal sizes, covering its rows, the largest first. */
class DispatchTest {

    @Test
    void anExpertsRowsAreCutIntoTheFewestBlocksOfNearlyEqualSizeTheLargestFirst() {
        // experts of 0, 1, 512, 513, 600 and 1100 rows
        int[] rowStart = {0, 0, 1, 513, 1026, 1626, 2726};
        Dispatch dispatch = new Dispatch(1, rowStart, new int[0], new int[0], new float[0]);
        int[][] blocks = dispatch.rowBlocks(512);
        List<int[]> want = new ArrayList<>();
        // the largest first, so that the pool ends on small blocks; equal sizes in expert and row order
        want.add(new int[] {2, 1, 512});
        want.add(new int[] {5, 1992, 367});
        want.add(new int[] {5, 2359, 367});
        want.add(new int[] {5, 1626, 366});
        want.add(new int[] {4, 1026, 300});
        want.add(new int[] {4, 1326, 300});
        want.add(new int[] {3, 769, 257});
        want.add(new int[] {3, 513, 256});
        want.add(new int[] {1, 0, 1});
        assertEquals(want.size(), blocks.length);
        for (int i = 0; i < blocks.length; i++) {
            assertArrayEquals(want.get(i), blocks[i], "block " + i);
        }
    }
}

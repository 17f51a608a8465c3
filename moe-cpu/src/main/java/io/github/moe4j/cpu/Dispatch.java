package io.github.moe4j.cpu;

import java.util.Arrays;
import java.util.Comparator;

/**
 * Index dispatch (the reference's {@code ReferenceLayer.Dispatch}): the kept assignments grouped by
 * expert, each expert's rows contiguous, in token order within an expert. Nothing is [T, E, C].
 *
 * @param choices    m, choices per token
 * @param rowStart   [E + 1] where each expert's rows start; the last entry is the number of rows
 * @param rowOf      [T, m] the row of each kept assignment, -1 if dropped or absent
 * @param tokenOfRow [rows] the token each row came from
 * @param gateOfRow  [rows] the combine weight of each row, rounded to float
 */
record Dispatch(int choices, int[] rowStart, int[] rowOf, int[] tokenOfRow, float[] gateOfRow) {

    /** Groups the kept assignments of a routing by expert: one counting pass, one placing pass. */
    static Dispatch of(CpuRouting plan, int experts) {
        int tokens = plan.tokens();
        int m = plan.choices();
        int[] selected = plan.selected();
        int[] slot = plan.slot();
        int[] rowStart = new int[experts + 1];
        for (int i = 0; i < tokens * m; i++) {
            if (slot[i] >= 0) {
                rowStart[selected[i] + 1]++;
            }
        }
        for (int ex = 0; ex < experts; ex++) {
            rowStart[ex + 1] += rowStart[ex];
        }
        int rows = rowStart[experts];
        int[] next = rowStart.clone();
        int[] rowOf = new int[tokens * m];
        int[] tokenOfRow = new int[rows];
        float[] gateOfRow = new float[rows];
        for (int i = 0; i < tokens * m; i++) {
            if (slot[i] >= 0) {
                int row = next[selected[i]]++;
                rowOf[i] = row;
                tokenOfRow[row] = i / m;
                gateOfRow[row] = (float) plan.gate()[i];
            } else {
                rowOf[i] = -1;
            }
        }
        return new Dispatch(m, rowStart, rowOf, tokenOfRow, gateOfRow);
    }

    /** The number of dispatched rows, over all experts. */
    int rows() {
        return rowStart[rowStart.length - 1];
    }

    /**
     * Each expert's rows cut into the fewest blocks of at most {@code size} rows, of equal sizes give or
     * take one: {expert, first row, rows} per block, the largest first (equal sizes in expert and row
     * order). The pool hands blocks out in this order to whichever thread is free, so the small
     * blocks come last and fill in while the other threads finish, where an expert-order list could
     * leave one thread alone with a large block at the end. The order changes no result: each block
     * writes its own rows.
     */
    int[][] rowBlocks(int size) {
        int experts = rowStart.length - 1;
        int count = 0;
        for (int ex = 0; ex < experts; ex++) {
            count += (rowStart[ex + 1] - rowStart[ex] + size - 1) / size;
        }
        int[][] blocks = new int[count][];
        int b = 0;
        for (int ex = 0; ex < experts; ex++) {
            // an expert's n rows in c = ceil(n / size) blocks of n / c rows (give or take one), not
            // full blocks and a small remainder, which would run a GEMM of a few rows
            int n = rowStart[ex + 1] - rowStart[ex];
            int c = (n + size - 1) / size;
            for (int i = 0; i < c; i++) {
                int from = rowStart[ex] + (int) ((long) i * n / c);
                int to = rowStart[ex] + (int) ((long) (i + 1) * n / c);
                blocks[b++] = new int[] {ex, from, to - from};
            }
        }
        Arrays.sort(blocks, Comparator.comparingInt((int[] block) -> block[2]).reversed()); // stable: ties keep expert order
        return blocks;
    }
}

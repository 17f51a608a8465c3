package io.github.moe4j.reference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The {@link TrainingExample} with its fixed seed: a one-layer MoE trained with the reference
 * backward learns the clustered task, its experts specialise by cluster, and the aux loss is what
 * keeps the load balanced from an unlucky start.
 *
 * <p>Measured with seed 2024, 2000 steps, lr 0.05 (about 1.6 s for both runs):
 * <pre>
 * α = 1: MSE 8.7072 → 0.0557 (0.6% of start); cluster → expert 0→0, 1→3, 2→1, 3→2, each 100% of
 *        its tokens; held-out load [96, 108, 91, 105], busiest/least busy 1.19 (the clusters' own sizes)
 * α = 0: MSE 8.7072 → 0.2167 (2.5% of start); every cluster → expert 0; load [400, 0, 0, 0]
 * </pre>
 * The claims below hold with room at this seed. Over seeds 1 to 20 (same settings), α = 1 met all
 * of them in 18 (the other two: purity 0.57 and 0.53 with load ratios 1.57 and 1.79, every expert
 * still used), and α = 0 left some expert with at most 5 of the 400 tokens in all 20.
 */
class TrainingExampleTest {
    private static TrainingExample.Result balanced;
    private static TrainingExample.Result unbalanced;

    @BeforeAll
    static void train() {
        balanced = TrainingExample.train(TrainingExample.ALPHA, TrainingExample.STEPS, TrainingExample.LEARNING_RATE, TrainingExample.SEED);
        unbalanced = TrainingExample.train(0, TrainingExample.STEPS, TrainingExample.LEARNING_RATE, TrainingExample.SEED);
        System.out.println("TrainingExample, α = " + TrainingExample.ALPHA + ":\n" + balanced + "\nα = 0:\n" + unbalanced);
    }

    /** The task loss falls below 5% of where it started (measured: 0.6%). */
    @Test
    void taskLossFalls() {
        assertTrue(balanced.finalMse() < 0.05 * balanced.initialMse(), balanced.toString());
    }

    /**
     * Experts specialise by cluster: at least 90% of each cluster's held-out tokens go to one
     * expert, and the four clusters' experts are four different experts (measured: 100% each).
     */
    @Test
    void expertsSpecialiseByCluster() {
        assertTrue(balanced.minPurity() >= 0.9, balanced.toString());
        assertTrue(balanced.clustersOnDistinctExperts(), balanced.toString());
    }

    /** With the aux loss the busiest expert holds at most 1.5 times the least busy one's tokens (measured: 1.19). */
    @Test
    void auxLossKeepsTheLoadBalanced() {
        assertTrue(balanced.loadRatio() <= 1.5, balanced.toString());
    }

    /**
     * Without it, from the same unlucky start (router bias +3 on expert 0), the layer collapses:
     * some expert gets no held-out token and the busiest takes at least half of them, twice its
     * fair share (measured: all 400 on expert 0).
     */
    @Test
    void withoutTheAuxLossTheLoadCollapses() {
        int[] load = unbalanced.load();
        int max = java.util.Arrays.stream(load).max().orElseThrow();
        assertEquals(0, java.util.Arrays.stream(load).min().orElseThrow(), unbalanced.toString());
        assertTrue(max >= TrainingExample.EVAL / 2, unbalanced.toString());
    }
}

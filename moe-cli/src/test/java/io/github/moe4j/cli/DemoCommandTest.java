package io.github.moe4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.CapacityBase;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Presets;
import io.github.moe4j.api.Rounding;
import io.github.moe4j.api.Routing;
import io.github.moe4j.reference.ReferenceBackend;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class DemoCommandTest {

    private static CliRun demo(String... args) {
        List<String> all = new ArrayList<>(List.of("demo"));
        all.addAll(List.of(args));
        CliRun run = CliRun.of(all.toArray(new String[0]));
        assertEquals(0, run.exitCode(), run::describe);
        assertEquals("", run.err(), run::describe);
        return run;
    }

    @Test
    void sameSeedPrintsTheSameTextTwice() {
        String first = demo("--seed", "7").out();
        String second = demo("--seed", "7").out();
        String otherSeed = demo("--seed", "8").out();

        assertEquals(first, second);
        assertNotEquals(first, otherSeed, "the seed should change the weights and the input");
    }

    @Test
    void printsOneRoutingRowPerTokenInOrder() {
        PrintedDemo printed = PrintedDemo.parse(demo("--tokens", "13").out());

        assertEquals(13, printed.rows().size());
        for (int t = 0; t < 13; t++) {
            assertEquals(t, printed.rows().get(t).token());
            assertEquals(2, printed.rows().get(t).cells().size(), "gshard gives every token k = 2 choices");
        }
    }

    @Test
    void capacityFollowsTheGShardFormula() {
        // gshard: C = min(T, max(4, ceil(cf * k * T / E)))
        assertEquals(8, PrintedDemo.parse(demo().out()).capacity(), "ceil(1.0 * 2 * 16 / 4) = 8");
        assertEquals(10, PrintedDemo.parse(demo("--tokens", "40", "--capacity-factor", "0.5").out()).capacity(),
                "ceil(0.5 * 2 * 40 / 4) = 10");
        assertEquals(4, PrintedDemo.parse(demo("--tokens", "6").out()).capacity(), "max(4, ceil(1.0 * 2 * 6 / 4) = 3) = 4");
    }

    @Test
    void droppedCountAgreesWithTheRoutingRowsAndTheExpertTable() {
        PrintedDemo printed = PrintedDemo.parse(demo().out());

        long droppedCells = printed.rows().stream().mapToLong(PrintedDemo.Row::droppedCells).sum();
        int droppedByExperts = printed.experts().stream().mapToInt(PrintedDemo.ExpertLoad::dropped).sum();
        int load = printed.experts().stream().mapToInt(PrintedDemo.ExpertLoad::load).sum();
        assertTrue(printed.dropped() > 0, "the default demo should show dropping, printed " + printed.dropped());
        assertEquals(printed.dropped(), droppedCells);
        assertEquals(printed.dropped(), droppedByExperts);
        assertEquals(16 * 2, load, "T * k assignments");
        for (PrintedDemo.ExpertLoad e : printed.experts()) {
            assertTrue(e.kept() <= printed.capacity(), e + " keeps more than C = " + printed.capacity());
            assertEquals(e.load() - e.kept(), e.dropped(), e::toString);
            assertEquals(Math.min(e.load(), printed.capacity()), e.kept(), "kept = min(C, load) for " + e);
        }
    }

    @Test
    void printedRoutingIsTheReferenceRouting() {
        long seed = 11;
        MoeConfig config = Presets.gshardTop2().modelDim(DemoCommand.MODEL_DIM).hiddenDim(DemoCommand.HIDDEN_DIM).experts(4)
                .capacity(Capacity.factor(1.0, CapacityBase.ASSIGNMENTS, Rounding.CEIL, 4)).build();
        Routing routing;
        try (MoeLayer layer = ReferenceBackend.INSTANCE.createLayer(config, MoeWeights.random(config, seed));
             MoeForward forward = layer.forward(DemoCommand.randomInput(seed, 16, DemoCommand.MODEL_DIM), ForwardOptions.inference())) {
            routing = forward.routing();
        }

        PrintedDemo printed = PrintedDemo.parse(demo("--seed", Long.toString(seed), "--backend", "reference").out());

        assertEquals(routing.capacity(), printed.capacity());
        assertEquals(routing.dropped(), printed.dropped());
        for (int t = 0; t < 16; t++) {
            for (int j = 0; j < 2; j++) {
                String cell = printed.rows().get(t).cells().get(j);
                String expected = routing.isKept(t, j)
                        ? String.format(java.util.Locale.ROOT, "e%d gate %.4f slot %d", routing.expert(t, j), routing.gate(t, j), routing.slot(t, j))
                        : "e" + routing.expert(t, j) + " dropped";
                assertEquals(expected, cell, "token " + t + ", choice " + j);
            }
        }
    }

    @Test
    void aTop1TokenWhoseOnlyAssignmentIsDroppedOutputsZero() {
        // switch with C = max(4, floor(0.5 * 64 / 4)) = 8 keeps at most 32 of 64 tokens
        PrintedDemo printed = PrintedDemo.parse(demo("--preset", "switch", "--tokens", "64", "--capacity-factor", "0.5").out());

        assertEquals(8, printed.capacity());
        assertTrue(printed.dropped() >= 32, "at least 64 - 4 * 8 dropped, printed " + printed.dropped());
        for (PrintedDemo.Row row : printed.rows()) {
            if (row.droppedCells() == 1) {
                assertEquals(0.0, row.outputNorm(), "token " + row.token());
            } else {
                assertTrue(row.outputNorm() > 0, "token " + row.token());
            }
        }
    }

    @Test
    void expertChoiceFillsEveryExpertToCapacity() {
        // expert-choice: C = min(T, max(1, ceil(1.0 * 16 / 4))) = 4 tokens per expert
        PrintedDemo printed = PrintedDemo.parse(demo("--preset", "expert-choice").out());

        assertEquals(4, printed.capacity());
        assertEquals(0, printed.dropped());
        for (PrintedDemo.ExpertLoad e : printed.experts()) {
            assertEquals(4, e.kept(), e::toString);
        }
    }

    @Test
    void droplessPresetsDropNothing() {
        String text = demo("--preset", "mixtral").out();
        PrintedDemo printed = PrintedDemo.parse(text);

        assertEquals(-1, printed.capacity());
        assertEquals(0, printed.dropped());
        assertTrue(text.contains("Capacity  unlimited (dropless): nothing is dropped"), text);
    }

    @Test
    void trainingDrawsTheNoisyTopKNoiseAndChangesTheGates() {
        PrintedDemo inference = PrintedDemo.parse(demo("--preset", "noisy-top-k").out());
        PrintedDemo training = PrintedDemo.parse(demo("--preset", "noisy-top-k", "--training").out());

        assertNotEquals(inference.rows(), training.rows());
    }

    @ParameterizedTest
    @EnumSource(DemoPreset.class)
    void everyPresetRunsInInferenceAndTraining(DemoPreset preset) {
        for (String mode : new String[] {"--seed=3", "--training"}) {
            String text = demo("--preset", preset.toString(), "--tokens", "9", mode).out();

            assertEquals(9, PrintedDemo.parse(text).rows().size(), text);
            assertTrue(text.contains("Preset    " + preset + " -- "), text);
            assertTrue(text.lines().anyMatch(l -> l.matches("total\\s+\\S+")), text);
        }
    }
}

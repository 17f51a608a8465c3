package io.github.moe4j.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.moe4j.api.Activation;
import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.Mode;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.Priority;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import java.util.Set;
import java.util.TreeSet;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.From;
import net.jqwik.api.Property;
import net.jqwik.api.statistics.Statistics;

/**
 * The generators reach what they promise (STYLE §19): every router, capacity mode, priority,
 * expert kind and preset, the edge sizes, masks, groups and noise, in useful proportions; and a
 * case is a deterministic function of its components.
 */
class MoeCasesTest {

    @Property(tries = 2000)
    void everyRouterCapacityPriorityAndKindIsGenerated(@ForAll @From(supplier = MoeCases.All.class) MoeCase c) {
        MoeConfig config = c.config();
        Statistics.label("router").collect(Coverage.routerLabel(config))
                .coverage(cov -> {
                    cov.check("token-choice NONE").percentage(p -> p > 5);
                    cov.check("token-choice RENORMALIZE/BEFORE_CAPACITY").percentage(p -> p > 5);
                    cov.check("token-choice RENORMALIZE/AFTER_CAPACITY").percentage(p -> p > 5);
                    cov.check("noisy-top-k LEARNED").percentage(p -> p > 3);
                    cov.check("noisy-top-k NONE").percentage(p -> p > 3);
                    cov.check("expert-choice").percentage(p -> p > 5);
                });
        Statistics.label("capacity").collect(Coverage.capacityLabel(config.capacity()))
                .coverage(cov -> {
                    cov.check("dropless").percentage(p -> p > 10);
                    cov.check("factor").percentage(p -> p > 20);
                    cov.check("fixed").percentage(p -> p > 10);
                });
        Statistics.label("priority").collect(config.priority()).coverage(cov -> {
            for (Priority p : Priority.values()) {
                cov.check(p).percentage(x -> x > 5);
            }
        });
        Statistics.label("activation").collect(config.activation()).coverage(cov -> {
            for (Activation a : Activation.values()) {
                cov.check(a).percentage(x -> x > 5);
            }
        });
        Statistics.label("origin").collect(c.origin().replaceAll("\\(\\d+(\\.\\d+)?\\)", "(...)")).coverage(cov -> {
            for (String preset : new String[] {"Presets.switchTop1()", "Presets.gshardTop2()", "Presets.stMoe()", "Presets.mixtral()",
                    "Presets.deepSpeedTop1()", "Presets.deepSpeedTop2()", "Presets.deepSpeedTopK(...)", "Presets.shazeerNoisyTopK(...)",
                    "Presets.expertChoice(...)"}) {
                cov.check(preset).percentage(p -> p > 0.5);
            }
        });
        String shape = config.experts() == 1 ? "E=1" : config.choicesPerToken() == config.experts() ? "k=E" : "k<E";
        Statistics.label("shape").collect(shape).coverage(cov -> {
            cov.check("E=1").percentage(p -> p > 5);
            cov.check("k=E").percentage(p -> p > 5);
        });
        Statistics.label("tokens").collect(c.tokens() == 0 ? "T=0" : c.tokens() == 1 ? "T=1" : "T>1").coverage(cov -> {
            cov.check("T=0").percentage(p -> p > 1);
            cov.check("T=1").percentage(p -> p > 1);
        });
        Statistics.label("features").collect(c.groups() > 1 ? "groups" : "one group").coverage(cov -> cov.check("groups").percentage(p -> p > 30));
        Statistics.label("mask").collect(c.padding() != null).coverage(cov -> cov.check(true).percentage(p -> p > 10));
        Statistics.label("mode").collect(c.mode()).coverage(cov -> cov.check(Mode.TRAINING).percentage(p -> p > 30));
        Statistics.label("init").collect(c.routerInit()).coverage(cov -> cov.check(MoeCase.RouterInit.TIED).percentage(p -> p > 5));
        Statistics.label("large logits").collect(c.inputScale() >= 30).coverage(cov -> cov.check(true).percentage(p -> p > 5));
        boolean jitter = config.router() instanceof TokenChoiceRouterConfig t && t.jitter() > 0;
        Statistics.label("jitter").collect(jitter).coverage(cov -> cov.check(true).percentage(p -> p > 5));
        boolean random = config.router() instanceof TokenChoiceRouterConfig t
                && t.secondExpertPolicy().kind() == io.github.moe4j.api.SecondExpertPolicy.Kind.RANDOM;
        Statistics.label("random second expert").collect(random).coverage(cov -> cov.check(true).percentage(p -> p > 1));
    }

    @Property(tries = 300)
    void tokenChoiceWithDropsDropsSomeButNotAllChoicesOfMostTokens(@ForAll @From(supplier = MoeCases.TokenChoiceWithDrops.class) MoeCase c) {
        assertTrue(c.config().capacity() instanceof Capacity.Fixed && c.config().topK() >= 2);
    }

    @Example
    void aCaseIsADeterministicFunctionOfItsComponents() {
        MoeCase c = MoeCases.all().sample();
        MoeCase again = new MoeCase(c.config(), c.origin(), c.routerInit(), c.weightSeed(), c.groups(), c.tokensPerGroup(),
                c.padding() == null ? null : c.padding().clone(), c.mode(), c.noiseSeed(), c.step(), c.inputScale(), c.inputSeed());
        assertEquals(c.input(), again.input());
        assertEquals(c.weights(), again.weights());
        assertEquals(c.dOutput(), again.dOutput());
        assertEquals(c.toString(), again.toString());
    }

    @Example
    void tiedRouterWeightsGiveExactlyTiedLogits() {
        MoeCase c = MoeCases.builder().routerInits(net.jqwik.api.Arbitraries.just(MoeCase.RouterInit.TIED)).build().sample();
        float[] w = c.weights().router().toArray();
        for (float v : w) {
            assertEquals(0f, v);
        }
        if (c.weights().routerBias() != null) {
            Set<Float> values = new TreeSet<>();
            for (float b : c.weights().routerBias().toArray()) {
                values.add(b);
            }
            assertTrue(Set.of(-0.5f, 0f, 0.5f).containsAll(values), values.toString());
        }
    }
}

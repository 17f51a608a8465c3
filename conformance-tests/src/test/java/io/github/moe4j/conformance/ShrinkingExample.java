package io.github.moe4j.conformance;

import net.jqwik.api.ForAll;
import net.jqwik.api.From;
import net.jqwik.api.Property;

/** A property that fails on every case with E at least 3 and T at least 2; run by {@link ShrinkingTest}. */
public class ShrinkingExample {
    @Property(tries = 500)
    void failsFromThreeExpertsAndTwoTokens(@ForAll @From(supplier = MoeCases.All.class) MoeCase c) {
        if (c.config().experts() >= 3 && c.tokens() >= 2) {
            throw new AssertionErrorWithCase("E >= 3 and T >= 2", c);
        }
    }
}

package io.github.moe4j.conformance;

import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.conformance.Coverage.Direction;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ArbitrarySupplier;
import net.jqwik.api.ForAll;
import net.jqwik.api.From;
import net.jqwik.api.GenerationMode;
import net.jqwik.api.Property;

/**
 * The golden cases (SPEC §9, STYLE §24): numbers produced by running public MoE implementations
 * (Hugging Face Switch and Mixtral, DeepSpeed, tensor2tensor, flaxformer) on fixed inputs, shipped
 * in this jar. Each case runs through the backend with its weights and input rounded to float32,
 * and its routing (exactly), gates, output and losses are compared at the float32 tolerances.
 */
public interface GoldenContract extends BackendContract {

    /** Every golden case, once each (exhaustive generation over {@link GoldenCase#ids()}). */
    @Property(generation = GenerationMode.EXHAUSTIVE)
    default void goldenCaseIsReproduced(@ForAll @From(supplier = GoldenIds.class) String id) throws Exception {
        GoldenSetup s = GoldenSetup.of(GoldenCase.load(id));
        Suite.certify(this, s.config(), Direction.FORWARD, b -> {
            Oracle o = new Oracle(s.config(), s.weights(), s.input(), s.options(), s);
            Tolerances tol = tolerances();
            Tolerances.Sizes sizes = o.sizes();
            try (MoeLayer layer = b.createLayer(s.config(), s.weights()); MoeForward f = layer.forward(s.input(), s.options())) {
                for (GoldenSetup.Expectation x : s.expectations()) {
                    double[] got = x.got().apply(f);
                    String what = s.golden().id() + ": " + x.name();
                    switch (x.kind()) {
                        case EXACT -> Compare.floatsReport(what, x.want(), got, x.shape(), Tolerance.exact("a routing decision")).assertPassed(s);
                        case GATES -> Compare.floatsReport(what, x.want(), got, x.shape(), tol.gates(sizes), 1).assertPassed(s);
                        case OUTPUT -> Compare.floats(what, x.want(), got, x.shape(), tol.output(sizes), s);
                        case AUX -> Compare.scalar(what, x.want()[0], got[0], tol.aux(sizes), 1, s);
                        case Z -> Compare.scalar(what, x.want()[0], got[0], tol.z(sizes), 1, s);
                        case IMPORTANCE -> Compare.scalar(what, x.want()[0], got[0], tol.importance(sizes), 1, s);
                        case LOAD -> Compare.scalar(what, x.want()[0], got[0], tol.load(sizes), 1, s);
                        case TOTAL -> Compare.scalar(what, x.want()[0], got[0], tol.total(sizes, s.config().losses(), f.losses()), 1, s);
                    }
                }
            }
        });
    }

    /** The ids of the golden cases in this jar. */
    final class GoldenIds implements ArbitrarySupplier<String> {
        @Override
        public Arbitrary<String> get() {
            return Arbitraries.of(GoldenCase.ids());
        }
    }
}

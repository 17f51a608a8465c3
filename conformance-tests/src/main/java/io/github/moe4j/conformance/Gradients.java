package io.github.moe4j.conformance;

import io.github.moe4j.api.Freeze;
import io.github.moe4j.api.MoeGradients;
import io.github.moe4j.api.Tensor;
import java.util.List;
import java.util.Set;
import java.util.function.Function;

/** The components of {@link MoeGradients}, named, with the parameter group each belongs to. */
final class Gradients {
    private Gradients() {}

    /**
     * One component.
     *
     * @param name  its name in {@link MoeGradients}
     * @param group the group that freezes it, or null for the input
     * @param get   the accessor
     */
    record Component(String name, Freeze group, Function<MoeGradients, Tensor> get) {}

    static final List<Component> ALL = List.of(
            new Component("input", null, MoeGradients::input),
            new Component("router", Freeze.ROUTER, MoeGradients::router),
            new Component("routerBias", Freeze.ROUTER, MoeGradients::routerBias),
            new Component("noiseRouter", Freeze.ROUTER, MoeGradients::noiseRouter),
            new Component("wIn", Freeze.EXPERTS, MoeGradients::wIn),
            new Component("wGate", Freeze.EXPERTS, MoeGradients::wGate),
            new Component("wOut", Freeze.EXPERTS, MoeGradients::wOut),
            new Component("bIn", Freeze.EXPERTS, MoeGradients::bIn),
            new Component("bOut", Freeze.EXPERTS, MoeGradients::bOut));

    /** Every component: null exactly where the oracle's is null, otherwise its shape and values within tolerance. */
    static void compare(MoeGradients want, MoeGradients got, Tolerance tol, Set<Freeze> frozen, Object context) {
        compare(want, got, tol, frozen, CancellingTerms.Magnitudes.NONE, context);
    }

    /**
     * As {@link #compare(MoeGradients, MoeGradients, Tolerance, Set, Object)}, with the absolute part
     * of each component's tolerance scaled by max|want| plus the largest magnitude of the terms its
     * value cancels from ({@link CancellingTerms}), rather than by max|want| alone.
     */
    static void compare(MoeGradients want, MoeGradients got, Tolerance tol, Set<Freeze> frozen, CancellingTerms.Magnitudes cancelling,
                        Object context) {
        if (got == null) {
            throw Compare.failure("backward returned null", context);
        }
        for (Component c : ALL) {
            Tensor w = c.get().apply(want);
            Tensor g = c.get().apply(got);
            String what = "gradient." + c.name() + " (frozen " + frozen + ")";
            if ((w == null) != (g == null)) {
                throw Compare.failure(what + " is " + (g == null ? "null" : "present") + " but the oracle's is "
                        + (w == null ? "null" : "present") + " (null exactly for absent weights and frozen groups)", context);
            }
            if (w != null) {
                Compare.shape(what, w.shape(), g, context);
                double[] wanted = w.toDoubleArray();
                double scale = Compare.maxAbs(wanted) + Compare.maxAbs(cancelled(c.name(), cancelling));
                Compare.floatsReport(what, wanted, g.toDoubleArray(), g.shape(), tol, scale).assertPassed(context);
            }
        }
    }

    /** The cancelling terms' magnitudes for a component, or an empty array. */
    private static double[] cancelled(String component, CancellingTerms.Magnitudes m) {
        double[] v = switch (component) {
            case "input" -> m.input();
            case "router" -> m.router();
            case "routerBias" -> m.routerBias();
            case "noiseRouter" -> m.noiseRouter();
            case "wIn" -> m.experts() == null ? null : m.experts().wIn();
            case "wGate" -> m.experts() == null ? null : m.experts().wGate();
            case "wOut" -> m.experts() == null ? null : m.experts().wOut();
            case "bIn" -> m.experts() == null ? null : m.experts().bIn();
            case "bOut" -> m.experts() == null ? null : m.experts().bOut();
            default -> null;
        };
        return v == null ? new double[0] : v;
    }

    /** The frozen groups' components are null (SPEC §10, independent of the oracle). */
    static void frozenAreNull(MoeGradients got, Set<Freeze> frozen, Object context) {
        for (Component c : ALL) {
            if (c.group() != null && frozen.contains(c.group()) && c.get().apply(got) != null) {
                throw Compare.failure("gradient." + c.name() + " belongs to frozen group " + c.group() + " but is not null", context);
            }
        }
        if (got.input() == null) {
            throw Compare.failure("gradient.input is null; the input's gradient is always computed (frozen " + frozen + ")", context);
        }
    }
}

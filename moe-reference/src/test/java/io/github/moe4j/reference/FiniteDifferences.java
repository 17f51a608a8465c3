package io.github.moe4j.reference;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.ToDoubleFunction;

/**
 * Central finite differences of a case's loss with respect to its input and every weight
 * component: \( (L(p + h) - L(p - h)) / 2h \), truncation error \( h^2 L''' / 6 \).
 */
final class FiniteDifferences {
    /** The step: a power of two near 1e-6, so that p ± h and the division by 2h add no rounding of their own. */
    static final double STEP = 0x1p-20;

    private FiniteDifferences() {}

    /** One gradient tensor compared element by element. */
    record Comparison(String name, double[] analytic, double[] numeric) {}

    /** A scalar function of the weights and the input. */
    interface Loss {
        double at(ReferenceWeights w, double[] x);
    }

    /** Every (name, analytic, numeric) of a case's loss \( \sum dY \odot y + \) losses; absent components are left out. */
    static List<Comparison> compare(BackwardCase c, ReferenceGradients g) {
        return compare(c, g, c::loss);
    }

    /** Every (name, analytic, numeric) of {@code loss}; a component null in {@code g} is left out. */
    static List<Comparison> compare(BackwardCase c, ReferenceGradients g, Loss loss) {
        Map<String, double[]> analytic = new LinkedHashMap<>();
        analytic.put("input", g.input());
        analytic.put("router", g.router());
        analytic.put("routerBias", g.routerBias());
        analytic.put("noiseRouter", g.noiseRouter());
        analytic.put("wIn", g.wIn());
        analytic.put("wGate", g.wGate());
        analytic.put("wOut", g.wOut());
        analytic.put("bIn", g.bIn());
        analytic.put("bOut", g.bOut());
        List<Comparison> out = new ArrayList<>();
        for (Map.Entry<String, double[]> entry : analytic.entrySet()) {
            if (entry.getValue() == null) {
                continue;
            }
            String name = entry.getKey();
            double[] numeric = name.equals("input")
                    ? numeric(c.x(), x -> loss.at(c.weights(), x))
                    : numeric(component(c.weights(), name), p -> loss.at(with(c.weights(), name, p), c.x()));
            out.add(new Comparison(name, entry.getValue(), numeric));
        }
        return out;
    }

    private static double[] numeric(double[] point, ToDoubleFunction<double[]> loss) {
        double[] grad = new double[point.length];
        for (int i = 0; i < point.length; i++) {
            double[] plus = point.clone();
            double[] minus = point.clone();
            plus[i] += STEP;
            minus[i] -= STEP;
            grad[i] = (loss.applyAsDouble(plus) - loss.applyAsDouble(minus)) / (2 * STEP);
        }
        return grad;
    }

    static double[] component(ReferenceWeights w, String name) {
        return switch (name) {
            case "router" -> w.router();
            case "routerBias" -> w.routerBias();
            case "noiseRouter" -> w.noiseRouter();
            case "wIn" -> w.wIn();
            case "wGate" -> w.wGate();
            case "wOut" -> w.wOut();
            case "bIn" -> w.bIn();
            case "bOut" -> w.bOut();
            default -> throw new IllegalArgumentException(name);
        };
    }

    /** A copy of the weights with one component replaced. */
    static ReferenceWeights with(ReferenceWeights w, String name, double[] v) {
        return new ReferenceWeights(w.d(), w.h(), w.experts(),
                name.equals("router") ? v : w.router(),
                name.equals("routerBias") ? v : w.routerBias(),
                name.equals("noiseRouter") ? v : w.noiseRouter(),
                name.equals("wIn") ? v : w.wIn(),
                name.equals("wGate") ? v : w.wGate(),
                name.equals("wOut") ? v : w.wOut(),
                name.equals("bIn") ? v : w.bIn(),
                name.equals("bOut") ? v : w.bOut());
    }
}

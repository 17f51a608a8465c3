package io.github.moe4j.conformance;

import io.github.moe4j.api.Checks;

/**
 * Every tolerance of the suite, in one place, each with its reason (STYLE §21, SPEC §11).
 *
 * <p>The model: a backend computes in a floating-point format of unit roundoff u (float32:
 * \( u = 2^{-24} \)). A dot product or sum of n terms, accumulated one after the other, has error at
 * most \( \gamma_n \sum |terms| \) with \( \gamma_n = n u / (1 - n u) \) (Higham, <i>Accuracy and
 * Stability of Numerical Algorithms</i>, 2nd ed., §3.1); a tree or blocked sum does better. Each
 * bound below counts n along the longest chain of dependent roundings of the quantity, and the
 * factor {@link #SAFETY} covers \( \sum|terms| / \max|result| \) for the suite's own generators
 * (Gaussian weights scaled by \( 1/\sqrt{fan\_in} \), Gaussian inputs: the ratio stays below 4 for
 * the sizes generated) and the first-order terms of independent sub-chains. Logits enter the
 * softmax through \( \exp(z - \max z) \), so an absolute logit error becomes a relative gate
 * error: bounds that depend on the logits scale with \( m = 1 + \max|z| \).
 *
 * <p>The oracle computes in double and rounds once, so it passes every bound with error
 * \( \le u/2 \) relative; the bounds are set for a float32 backend, which is what they must not
 * reject. This module's tests run a float32 implementation of the forward pass (every operation
 * rounded to float) through the whole suite, and measure how much of each bound it uses over 1500
 * generated cases: about 1-7% of the output bound, 1-2% of z, 0.6% of the gates', 0.3% of aux and
 * 0.05% of the cv² losses'. The distance is the worst case the bounds must also cover: sums whose
 * roundings all go one way, other summation orders (tiles, trees, fused multiply-add), device
 * exponentials whose error grows with |x| (CUDA's {@code __expf}), larger d and h.
 *
 * <p>Never widen a bound to make a backend pass: a backend that needs a wider one computes in a
 * coarser format and should say so by overriding {@code tolerances()} with
 * {@link #forUnitRoundoff(String, double)} (for example TF32, \( u = 2^{-11} \)).
 */
public final class Tolerances {

    /** IEEE binary32: \( u = 2^{-24} \), smallest normal number \( 2^{-126} \). */
    public static final Tolerances FP32 = new Tolerances("float32", Math.scalb(1.0, -24), Float.MIN_NORMAL);

    /**
     * The safety factor on every first-order bound: 4 for \( \sum|terms|/\max|result| \) with the
     * suite's Gaussian data, times 2 for \( \gamma_n \)'s denominator and second-order terms.
     */
    public static final double SAFETY = 8;

    /** SPEC §11: the routing margin \( \delta = 10^{-4}(1 + \max|z_t|) \) is fixed, independent of the format. */
    public static final double ROUTING_MARGIN = 1e-4;

    /** A few roundings of each elementwise function (exp, log, erf, tanh, softplus, division) on the chain. */
    private static final int ELEMENTWISE = 8;

    private final String format;
    private final double u;
    /**
     * The underflow floor of every bound: {@link #SAFETY} times the format's smallest normal number.
     * Below it a float result is not defined to full precision (products underflow to subnormals, or
     * to 0 where the hardware flushes them), while the double oracle still gives, say, 1e-79 for a
     * GELU far in its tail. A difference that small is underflow, not error.
     */
    private final double floor;

    private Tolerances(String format, double unitRoundoff, double minNormal) {
        this.format = Checks.requireNonNull(format, "format");
        this.u = Checks.requireStrictlyPositiveFinite(unitRoundoff, "unitRoundoff");
        this.floor = SAFETY * Checks.requireStrictlyPositiveFinite(minNormal, "minNormal");
    }

    /**
     * Tolerances for a backend computing in a format of unit roundoff u (half the distance from 1
     * to the next representable number) with float32's exponent range (TF32, bfloat16).
     */
    public static Tolerances forUnitRoundoff(String format, double unitRoundoff) {
        return new Tolerances(format, unitRoundoff, Float.MIN_NORMAL);
    }

    /** Tolerances for a format of unit roundoff u whose smallest normal number is minNormal (float16: 2^-14). */
    public static Tolerances forFormat(String format, double unitRoundoff, double minNormal) {
        return new Tolerances(format, unitRoundoff, minNormal);
    }

    private Tolerance tolerance(double rel, double abs, String reason) {
        return new Tolerance(rel, abs, floor, reason);
    }

    /** The format's name, e.g. {@code float32}. */
    public String format() {
        return format;
    }

    /** u. */
    public double unitRoundoff() {
        return u;
    }

    /**
     * The sizes a bound depends on, for one call.
     *
     * @param modelDim       d
     * @param hiddenDim      h
     * @param experts        E
     * @param choices        entries per token (k; E for expert choice)
     * @param tokens         T of the call
     * @param tokensPerGroup T / G
     * @param logitScale     \( m = 1 + \max|z| \) over the call, from the oracle
     * @param noiseFloor     the smallest noise standard deviation \( \epsilon_0 \) of noisy top-k (1 otherwise)
     */
    public record Sizes(int modelDim, int hiddenDim, int experts, int choices, int tokens, int tokensPerGroup,
                        double logitScale, double noiseFloor) {}

    /** The absolute error of one logit: a length-d dot product, the bias and the jitter product, times m. */
    private double logitError(Sizes s) {
        return SAFETY * u * (s.modelDim() + 2) * s.logitScale();
    }

    /**
     * Routing gates and probabilities, which lie in [0, 1] (scale 1). A gate is
     * \( e^{z_e - \max}/\sum_{j} e^{z_j - \max} \): the sum of E exponentials and the division are
     * at most (E + 8)u relative; the error of the logits \( z_e \) and \( \max \) enters twice.
     */
    public Tolerance gates(Sizes s) {
        double abs = SAFETY * u * (s.experts() + ELEMENTWISE) + 2 * logitError(s);
        return tolerance(0, abs, format + " softmax over E=" + s.experts() + " of logits from a length-"
                + s.modelDim() + " dot product, logit scale " + fmt(s.logitScale()));
    }

    /**
     * The layer output y, scale max|y|: \( y = \sum_j g_j f_j(x) \) with
     * \( f = W_{out}^\top \phi(W_{in}^\top x + b_{in}) + b_{out} \): a length-d dot product, the
     * activation, a length-h dot product and a length-k sum, plus the gates' error relative to 1.
     */
    public Tolerance output(Sizes s) {
        double chain = SAFETY * u * (s.modelDim() + s.hiddenDim() + s.choices() + 2 * ELEMENTWISE);
        double gate = s.choices() * gates(s).abs();
        return tolerance(chain + gate, chain + gate, format + " chain d=" + s.modelDim() + " -> h="
                + s.hiddenDim() + " -> k=" + s.choices() + " plus k gate errors");
    }

    /**
     * The unweighted load-balancing loss \( E \sum_i f_i P_i \), scale 1: f is exact (counts); each
     * \( P_i \) is a mean over the group's T/G tokens of probabilities, so its error is a gate error
     * plus (T/G)u; \( \sum_i f_i \le k \) and the factor E give E·k times that, plus the final
     * E-term sum.
     */
    public Tolerance aux(Sizes s) {
        double perP = gates(s).abs() + SAFETY * u * (s.tokensPerGroup() + s.experts());
        double abs = s.experts() * Math.max(1, s.choices()) * perP;
        return tolerance(SAFETY * u * s.experts(), abs, format + " E*k*(gate error + mean over "
                + s.tokensPerGroup() + " tokens)");
    }

    /**
     * The unweighted z-loss \( \operatorname{mean}_t \operatorname{lse}(z_t)^2 \), scale 1: the lse's
     * absolute error is a logit error plus (E + 8)u; squaring multiplies it by \( 2|lse| \le 2(m + \ln E) \);
     * the mean over T/G tokens adds (T/G)u relative.
     */
    public Tolerance z(Sizes s) {
        double lse = s.logitScale() + Math.log(s.experts());
        double abs = 2 * lse * (logitError(s) + SAFETY * u * (s.experts() + ELEMENTWISE));
        return tolerance(SAFETY * u * (s.tokensPerGroup() + 2), abs, format + " 2|lse| times the lse error, lse <= "
                + fmt(lse) + "; mean over " + s.tokensPerGroup() + " tokens");
    }

    /**
     * The importance loss \( cv^2(\mathrm{Importance}) \), scale 1. Perturbing each entry \( v_i \) by
     * a relative error ε (relative to the mean) changes \( cv^2 \) by at most \( 4\varepsilon(1 + cv^2) \);
     * each entry sums T/G gates (mean entry (T/G)/E, so a gate error becomes E times it relative to
     * the mean), the cv² itself sums E terms.
     */
    public Tolerance importance(Sizes s) {
        double eps = s.experts() * gates(s).abs() + SAFETY * u * (s.tokensPerGroup() + s.experts() + ELEMENTWISE);
        return tolerance(4 * eps, 4 * eps, format + " 4*eps*(1 + cv^2), eps = E*gate error + sums of "
                + s.tokensPerGroup() + " gates and " + s.experts() + " entries");
    }

    /**
     * The load loss \( cv^2(\mathrm{Load}) \), scale 1, as {@link #importance} but each smooth load
     * term \( \Phi((clean - thr)/\sigma) \) has error \( \Phi' \le 0.4 \) times twice a logit error
     * over \( \sigma \ge \epsilon_0 \), relative to a mean entry (T/G)·k/E.
     */
    public Tolerance load(Sizes s) {
        double perTerm = 0.4 * 2 * (2 * logitError(s) + SAFETY * u * ELEMENTWISE) / s.noiseFloor() + SAFETY * u * ELEMENTWISE;
        double eps = s.experts() * perTerm / Math.max(1, s.choices()) + SAFETY * u * (s.tokensPerGroup() + s.experts() + ELEMENTWISE);
        return tolerance(4 * eps, 4 * eps, format + " 4*eps*(1 + cv^2), eps from Phi' <= 0.4 over sigma >= "
                + fmt(s.noiseFloor()));
    }

    /** The weighted total: the sum of each weighted loss's bound (scale 1). */
    public Tolerance total(Sizes s, io.github.moe4j.api.LossWeights w, io.github.moe4j.api.MoeLosses want) {
        double abs = w.aux() * aux(s).allowed(want.aux(), 1) + w.z() * z(s).allowed(want.z(), 1)
                + w.importance() * importance(s).allowed(want.importance(), 1) + w.load() * load(s).allowed(want.load(), 1);
        return tolerance(SAFETY * u * 4, abs, format + " sum of the weighted losses' bounds");
    }

    /**
     * Every gradient, scale max|want| of the component. The backward chain repeats the forward one
     * (d, h, k and the gate errors), adds its own (a length-h and a length-d product back through
     * the expert, the softmax's Jacobian over E), and a weight's gradient sums over all T tokens.
     * Noisy top-k's load loss divides by \( \sigma \ge \epsilon_0 \), once more in backward.
     */
    public Tolerance gradients(Sizes s) {
        double chain = SAFETY * u * (s.tokens() + 2 * (s.modelDim() + s.hiddenDim()) + s.choices() + s.experts() + 4 * ELEMENTWISE);
        double gate = 2 * s.choices() * gates(s).abs() / Math.min(1, s.noiseFloor());
        return tolerance(chain + gate, chain + gate, format + " forward and backward chains over d=" + s.modelDim()
                + ", h=" + s.hiddenDim() + ", k=" + s.choices() + ", E=" + s.experts() + " and the sum over T=" + s.tokens());
    }

    /**
     * The routing margin δ of SPEC §11 for keys whose largest magnitude is {@code maxAbsKey}: a
     * selection within δ of the oracle's is valid.
     */
    public static double routingMargin(double maxAbsKey) {
        return ROUTING_MARGIN * (1 + maxAbsKey);
    }

    private static String fmt(double v) {
        return String.format("%.3g", v);
    }

    @Override
    public String toString() {
        return "Tolerances[" + format + ", u=" + u + "]";
    }
}

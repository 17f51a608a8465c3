package io.github.moe4j.reference;

import io.github.moe4j.api.Activation;
import org.apache.commons.numbers.gamma.Erfc;

/**
 * One expert's feed-forward network (SPEC §8):
 * \( f_e(x) = W_{out,e}^\top \phi(W_{in,e}^\top x + b_{in,e}) + b_{out,e} \), and for the gated kinds
 * \( f_e(x) = W_{out,e}^\top (\phi(W_{in,e}^\top x + b_{in,e}) \odot W_{gate,e}^\top x) + b_{out,e} \).
 * With W_in, W_gate of shape [E, d, h] and W_out of shape [E, h, d], row-major.
 * {@link #backward} and {@link #weightGradients} differentiate {@link #forward} line by line.
 *
 * <pre>
 * Shazeer, N. "GLU Variants Improve Transformer." arXiv:2002.05202, 2020 (GEGLU, SwiGLU).
 * </pre>
 * Mirrors Hugging Face {@code SwitchTransformersDenseActDense} (RELU, GELU) and
 * {@code MixtralExperts} (SWIGLU: w1 = W_in, w3 = W_gate, w2 = W_out).
 */
public final class ExpertNetwork {
    private static final double SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
    private static final double GELU_TANH_CUBIC = 0.044715;

    private ExpertNetwork() {}

    /**
     * What one row's forward keeps for backward: the pre-activations and the hidden vector.
     *
     * @param preActivation \( a = W_{in}^\top x + b_{in} \), [h]
     * @param gateLinear    \( b = W_{gate}^\top x \), [h], or null if not gated
     * @param hidden        \( \phi(a) \) or \( \phi(a) \odot b \), [h]
     * @param output        \( f_e(x) \), [d]
     */
    public record Activations(double[] preActivation, double[] gateLinear, double[] hidden, double[] output) {}

    /** \( f_e(x) \) for one row {@code x[xOffset .. xOffset + d)}. */
    public static Activations forward(ReferenceWeights w, Activation kind, int e, double[] x, int xOffset) {
        return forward(w, kind, e, x, xOffset, 1)[0];
    }

    /**
     * \( f_e(x_r) \) for each of {@code rows} consecutive rows of x, starting at {@code xOffset}: exactly
     * {@link #forward(ReferenceWeights, Activation, int, double[], int)} of each row. Each sum starts
     * from its bias and adds its terms in increasing j (then i) order, as for one row; the loops take
     * one weight row at a time across all the rows, which changes no sum's order, only how often the
     * weights are read: once per call instead of once per row.
     */
    public static Activations[] forward(ReferenceWeights w, Activation kind, int e, double[] x, int xOffset, int rows) {
        int d = w.d();
        int h = w.h();
        double[][] a = new double[rows][h];
        double[][] b = kind.isGated() ? new double[rows][h] : null;
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < h; i++) {
                a[r][i] = w.bIn() == null ? 0 : w.bIn()[e * h + i];
            }
        }
        // ai = bIn[e, i] + Σ_j x[j] * wIn[e, j, i];  bi = Σ_j x[j] * wGate[e, j, i]
        for (int j = 0; j < d; j++) {
            int row = (e * d + j) * h;
            for (int r = 0; r < rows; r++) {
                double xj = x[xOffset + r * d + j];
                for (int i = 0; i < h; i++) {
                    a[r][i] += xj * w.wIn()[row + i];
                    if (b != null) {
                        b[r][i] += xj * w.wGate()[row + i];
                    }
                }
            }
        }
        // hidden[i] = φ(a[i]) (⊙ b[i])
        double[][] hidden = new double[rows][h];
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < h; i++) {
                hidden[r][i] = activate(kind, a[r][i]) * (b == null ? 1 : b[r][i]);
            }
        }
        // yj = bOut[e, j] + Σ_i hidden[i] * wOut[e, i, j]
        double[][] out = new double[rows][d];
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < d; j++) {
                out[r][j] = w.bOut() == null ? 0 : w.bOut()[e * d + j];
            }
        }
        for (int i = 0; i < h; i++) {
            int row = (e * h + i) * d;
            for (int r = 0; r < rows; r++) {
                double hi = hidden[r][i];
                for (int j = 0; j < d; j++) {
                    out[r][j] += hi * w.wOut()[row + j];
                }
            }
        }
        Activations[] result = new Activations[rows];
        for (int r = 0; r < rows; r++) {
            result[r] = new Activations(a[r], b == null ? null : b[r], hidden[r], out[r]);
        }
        return result;
    }

    /**
     * What the backward of one row hands to the expert's weight gradients:
     * \( \delta = \partial L / \partial f_e(x) \), \( \partial L / \partial a \) and (gated kinds)
     * \( \partial L / \partial b \), each as in {@link #backward}.
     *
     * @param dOutput \( \delta \), [d]
     * @param dA      \( \partial L / \partial a \), [h]
     * @param dB      \( \partial L / \partial b \), [h], or null if not gated
     */
    public record RowGradient(double[] dOutput, double[] dA, double[] dB) {}

    /**
     * Backward of {@link #forward} for one row: given \( \delta = \partial L / \partial f_e(x) \), adds
     * \( \partial L / \partial x \) to {@code dX}, and returns what {@link #weightGradients} needs:
     * \( \partial L / \partial \mathit{hidden} = W_{out} \delta \),
     * \( \partial L / \partial a = \partial L / \partial \mathit{hidden} \odot \phi'(a) \odot b \) (b = 1 if not gated),
     * \( \partial L / \partial b = \partial L / \partial \mathit{hidden} \odot \phi(a) \),
     * \( \partial L / \partial x = W_{in}\, \partial L / \partial a + W_{gate}\, \partial L / \partial b \).
     *
     * @param w        the weights the forward used
     * @param kind     the expert kind
     * @param e        the expert
     * @param cache    what {@link #forward} returned for this row
     * @param dOutput  \( \delta \), [d]
     * @param dX       accumulates \( \partial L / \partial x \) at {@code dxOffset}
     * @param dxOffset where the row starts in {@code dX}
     */
    public static RowGradient backward(ReferenceWeights w, Activation kind, int e, Activations cache, double[] dOutput,
                                       double[] dX, int dxOffset) {
        return backward(w, kind, e, new Activations[] {cache}, new double[][] {dOutput}, dX, new int[] {dxOffset})[0];
    }

    /**
     * {@link #backward(ReferenceWeights, Activation, int, Activations, double[], double[], int)} of
     * several rows of expert e at once: the same sums in the same order, with the loops taking one
     * weight row at a time across all the rows.
     *
     * @param dxOffset where each row's \( \partial L / \partial x \) goes in {@code dX}
     */
    public static RowGradient[] backward(ReferenceWeights w, Activation kind, int e, Activations[] cache, double[][] dOutput,
                                         double[] dX, int[] dxOffset) {
        int d = w.d();
        int h = w.h();
        int rows = cache.length;
        boolean gated = kind.isGated();
        // forward: yj = bOut[e, j] + Σ_i hidden[i] * wOut[e, i, j]
        double[][] dHidden = new double[rows][h];
        for (int i = 0; i < h; i++) {
            int row = (e * h + i) * d;
            for (int r = 0; r < rows; r++) {
                double s = 0;
                for (int j = 0; j < d; j++) {
                    s += dOutput[r][j] * w.wOut()[row + j];
                }
                dHidden[r][i] = s;
            }
        }
        // forward: hidden[i] = activate(kind, a[i]) * (b == null ? 1 : b[i])
        RowGradient[] result = new RowGradient[rows];
        for (int r = 0; r < rows; r++) {
            double[] a = cache[r].preActivation();
            double[] b = cache[r].gateLinear();
            double[] dA = new double[h];
            double[] dB = gated ? new double[h] : null;
            for (int i = 0; i < h; i++) {
                dA[i] = dHidden[r][i] * derivative(kind, a[i]) * (b == null ? 1 : b[i]);
                if (dB != null) {
                    dB[i] = dHidden[r][i] * activate(kind, a[i]);
                }
            }
            result[r] = new RowGradient(dOutput[r], dA, dB);
        }
        // forward: ai = bIn[e, i] + Σ_j x[j] * wIn[e, j, i];  bi = Σ_j x[j] * wGate[e, j, i]
        for (int j = 0; j < d; j++) {
            int row = (e * d + j) * h;
            for (int r = 0; r < rows; r++) {
                double[] dA = result[r].dA();
                double[] dB = result[r].dB();
                double s = 0;
                for (int i = 0; i < h; i++) {
                    s += dA[i] * w.wIn()[row + i];
                    if (dB != null) {
                        s += dB[i] * w.wGate()[row + i];
                    }
                }
                dX[dxOffset[r] + j] += s;
            }
        }
        return result;
    }

    /**
     * The gradients of expert e's weights and biases over all of its rows, added to {@code dW}:
     * \( \partial L / \partial W_{out} = \sum_r \mathit{hidden}_r\, \delta_r^\top \),
     * \( \partial L / \partial W_{in} = \sum_r x_r\, (\partial L / \partial a_r)^\top \),
     * \( \partial L / \partial W_{gate} = \sum_r x_r\, (\partial L / \partial b_r)^\top \), and the
     * biases' \( \sum_r \delta_r \), \( \sum_r \partial L / \partial a_r \). Every element adds its rows in
     * order, as a row-by-row accumulation would; the loops take one weight row at a time across all
     * rows, so each gradient element is loaded and stored once per expert, not once per row.
     *
     * @param w     the weights the forward used (for the shapes)
     * @param e     the expert
     * @param x     the expert's rows' inputs, [rows, d]
     * @param cache what {@link #forward} returned for each row
     * @param rows  what {@link #backward} returned for each row
     * @param dW    accumulates the weight gradients in the weights' layout
     * @return the multiply-adds spent
     */
    public static long weightGradients(ReferenceWeights w, int e, double[] x, Activations[] cache, RowGradient[] rows,
                                       ReferenceGradients dW) {
        int d = w.d();
        int h = w.h();
        int n = rows.length;
        boolean gated = n > 0 && rows[0].dB() != null;
        // forward: yj = bOut[e, j] + Σ_i hidden[i] * wOut[e, i, j]
        for (int i = 0; i < h; i++) {
            int row = (e * h + i) * d;
            for (int r = 0; r < n; r++) {
                double hi = cache[r].hidden()[i];
                double[] dOut = rows[r].dOutput();
                for (int j = 0; j < d; j++) {
                    dW.wOut()[row + j] += hi * dOut[j];
                }
            }
        }
        if (dW.bOut() != null) {
            for (int r = 0; r < n; r++) {
                for (int j = 0; j < d; j++) {
                    dW.bOut()[e * d + j] += rows[r].dOutput()[j];
                }
            }
        }
        // forward: ai = bIn[e, i] + Σ_j x[j] * wIn[e, j, i];  bi = Σ_j x[j] * wGate[e, j, i]
        for (int j = 0; j < d; j++) {
            int row = (e * d + j) * h;
            for (int r = 0; r < n; r++) {
                double xj = x[r * d + j];
                double[] dA = rows[r].dA();
                double[] dB = rows[r].dB();
                for (int i = 0; i < h; i++) {
                    dW.wIn()[row + i] += xj * dA[i];
                    if (dB != null) {
                        dW.wGate()[row + i] += xj * dB[i];
                    }
                }
            }
        }
        if (dW.bIn() != null) {
            for (int r = 0; r < n; r++) {
                for (int i = 0; i < h; i++) {
                    dW.bIn()[e * h + i] += rows[r].dA()[i];
                }
            }
        }
        return (long) n * ((long) h * d + (long) d * h * (gated ? 2 : 1) + (dW.bOut() != null ? d : 0) + (dW.bIn() != null ? h : 0));
    }

    /**
     * \( \phi(a) \) of an expert kind (the gated kinds use their base nonlinearity). GELU is
     * \( a \Phi(a) \) with \( \Phi(a) = \tfrac12 \operatorname{erfc}(-a/\sqrt2) \), and the tanh form
     * \( \tfrac12 a (1 + \tanh u) = a\, \sigma(2u) \): the same functions as \( \tfrac12 a (1 + \operatorname{erf}) \)
     * and \( \tfrac12 a (1 + \tanh) \), written so that nothing cancels for \( a \ll 0 \), where
     * \( 1 + \operatorname{erf} \) or \( 1 + \tanh \) would lose every digit of a tiny result.
     */
    public static double activate(Activation kind, double a) {
        switch (kind) {
            case RELU:
                return a > 0 ? a : 0;
            case GELU:
            case GEGLU:
                return a * normalCdf(a);
            case GELU_TANH:
            case GEGLU_TANH:
                return a * sigmoid(2 * geluTanhArgument(a));
            case SILU:
            case SWIGLU:
                return a / (1 + Math.exp(-a));
            default:
                throw new AssertionError(kind);
        }
    }

    /** \( \Phi(a) = \tfrac12 (1 + \operatorname{erf}(a/\sqrt2)) \), as \( \tfrac12 \operatorname{erfc}(-a/\sqrt2) \). */
    private static double normalCdf(double a) {
        return 0.5 * Erfc.value(-a / Math.sqrt(2));
    }

    /** \( \sigma(v) = 1 / (1 + e^{-v}) \). */
    private static double sigmoid(double v) {
        return 1 / (1 + Math.exp(-v));
    }

    /** u of the tanh approximation of GELU: \( \sqrt{2/\pi}\,(a + 0.044715 a^3) \). */
    private static double geluTanhArgument(double a) {
        return SQRT_2_OVER_PI * (a + GELU_TANH_CUBIC * a * a * a);
    }

    /** \( \phi'(a) \), the derivative of {@link #activate}; ReLU's is taken as 0 at 0 (PyTorch). */
    public static double derivative(Activation kind, double a) {
        switch (kind) {
            case RELU:
                return a > 0 ? 1 : 0;
            case GELU:
            case GEGLU: {
                double pdf = Math.exp(-0.5 * a * a) / Math.sqrt(2 * Math.PI);
                return normalCdf(a) + a * pdf;
            }
            case GELU_TANH:
            case GEGLU_TANH: {
                // d/da [a σ(2u)] = σ(2u) + a · 2 σ(2u) σ(-2u) · du/da, i.e. ½(1 + tanh u) + ½ a (1 - tanh² u) du/da
                double u = geluTanhArgument(a);
                double du = SQRT_2_OVER_PI * (1 + 3 * GELU_TANH_CUBIC * a * a);
                return sigmoid(2 * u) + a * 2 * sigmoid(2 * u) * sigmoid(-2 * u) * du;
            }
            case SILU:
            case SWIGLU: {
                double s = 1 / (1 + Math.exp(-a));
                return s * (1 + a * (1 - s));
            }
            default:
                throw new AssertionError(kind);
        }
    }
}

package io.github.moe4j.api;

/**
 * The expert network's nonlinearity (SPEC §8). Gated kinds use a second input projection
 * {@code W_gate}: \( f(x) = W_{out}\,(\phi(W_{in} x) \odot W_{gate} x) \).
 *
 * <pre>
 * Shazeer, N. "GLU Variants Improve Transformer." arXiv:2002.05202, 2020.
 * Hendrycks, D., Gimpel, K. "Gaussian Error Linear Units (GELUs)." arXiv:1606.08415, 2016.
 * </pre>
 */
public enum Activation {
    /** \( \max(0, a) \). Switch Transformer, T5 v1.0. */
    RELU(false),
    /** Exact GELU, \( a\,\Phi(a) = \tfrac{a}{2}(1 + \operatorname{erf}(a/\sqrt{2})) \) (PyTorch {@code nn.GELU()}, Hugging Face {@code "gelu"}). */
    GELU(false),
    /** Tanh approximation of GELU, \( \tfrac{a}{2}(1 + \tanh(\sqrt{2/\pi}(a + 0.044715 a^3))) \) ({@code gelu_new}). */
    GELU_TANH(false),
    /** \( a \cdot \sigma(a) \) (SiLU, swish). */
    SILU(false),
    /** Gated exact GELU: \( \operatorname{gelu}(W_{in}x) \odot W_{gate}x \). T5.1.1, ST-MoE. */
    GEGLU(true),
    /** Gated tanh-approximate GELU (T5.1.1's {@code gelu_new} gate). */
    GEGLU_TANH(true),
    /** Gated SiLU: \( \operatorname{silu}(W_{in}x) \odot W_{gate}x \). Mixtral ({@code w1 = W_in, w3 = W_gate, w2 = W_out}). */
    SWIGLU(true);

    private final boolean gated;

    Activation(boolean gated) {
        this.gated = gated;
    }

    /** Whether the expert has the second projection {@code W_gate}. */
    public boolean isGated() {
        return gated;
    }
}

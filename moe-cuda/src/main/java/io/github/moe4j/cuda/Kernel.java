package io.github.moe4j.cuda;

/**
 * Every kernel entry point the backend launches, with the kernel file that defines it
 * ({@code kernels/<file>.cu}, shipped as {@code kernels/<file>.ptx}). Each file's header names the
 * reference method it mirrors.
 */
enum Kernel {
    /** Switch jitter: \( \tilde{x} = x \odot u \). */
    MULTIPLY_ELEMENTWISE("router", "multiply_elementwise"),
    /** Router bias: \( z \mathrel{+}= b_r \). */
    ADD_ROW_BIAS("router", "add_row_bias"),
    /** Softmax, top-k, gates before capacity, second-expert policy, non-finite logit check. */
    ROUTER_SOFTMAX_TOPK("router", "router_softmax_topk"),
    /** Noisy top-k: sigma = softplus(x W_noise) + eps0 and the keys H = z + eps * sigma. */
    NOISY_KEYS("router", "noisy_keys"),
    /** Noisy top-k: the smooth load's P(t, i). */
    PROB_IN_TOP_K("router", "prob_in_top_k"),
    /** Expert choice: softmax and lse alone, non-finite logit check. */
    ROUTER_SOFTMAX("router", "router_softmax"),
    /** Expert choice: each expert takes its C best tokens per group. */
    EXPERT_CHOICE_SELECT("capacity", "expert_choice_select"),
    /** Fills an int buffer. */
    FILL_INT("capacity", "fill_int"),
    /** Batch-prioritised token order per group. */
    BPR_TOKEN_ORDER("capacity", "bpr_token_order"),
    /** Capacity slots per (group, expert) in priority order. */
    ASSIGN_SLOTS("capacity", "assign_slots"),
    /** Combine weights once dropping is known. */
    GATES_AFTER_CAPACITY("capacity", "gates_after_capacity"),
    /** Each kept assignment's row in the dispatch buffer. */
    DISPATCH_ROWS("capacity", "dispatch_rows"),
    /** Dispatch: gathers input rows per expert. */
    GATHER_ROWS("dispatch", "gather_rows"),
    /** Combine: gathers expert outputs per token in rank order. */
    COMBINE_GATHER("dispatch", "combine_gather"),
    /** The expert nonlinearity (and gate product, and input bias). */
    EXPERT_ACTIVATION("experts", "expert_activation"),
    /** Aux-loss statistics f and P per (group, expert). */
    LOSS_EXPERT_STATS("losses", "loss_expert_stats"),
    /** Aux and z loss per group. */
    LOSS_GROUP_TOTALS("losses", "loss_group_totals"),
    /** Noisy top-k importance and load per (group, expert). */
    NOISY_LOSS_STATS("losses", "noisy_loss_stats"),
    /** The portable tiled GEMM (transposes and accumulation for backward). */
    GEMM_TILED("gemm", "gemm_tiled"),
    /** Backward of combine: dL/dg per assignment. */
    COMBINE_BACKWARD_GATES("dispatch", "combine_backward_gates"),
    /** Backward of combine: dL/df per dispatched row. */
    COMBINE_BACKWARD_ROWS("dispatch", "combine_backward_rows"),
    /** Backward of dispatch and jitter: dL/dx per token. */
    INPUT_GRADIENT("dispatch", "input_gradient"),
    /** Backward of the expert nonlinearity: dL/d(pre-activation) and dL/d(gate linear). */
    EXPERT_ACTIVATION_BACKWARD("experts", "expert_activation_backward"),
    /** Backward of gates, losses and softmax: dL/dz per token. */
    ROUTER_BACKWARD("backward", "router_backward"),
    /** Noisy top-k backward of gates, importance, smooth load, H and sigma: dL/dz and dL/d(x W_noise) per token. */
    NOISY_ROUTER_BACKWARD("backward", "noisy_router_backward"),
    /** Column sums over row segments: the bias gradients. */
    SEGMENT_COLUMN_SUMS("backward", "segment_column_sums");

    private final String file;
    private final String entryPoint;

    Kernel(String file, String entryPoint) {
        this.file = file;
        this.entryPoint = entryPoint;
    }

    /** The kernel file's base name, e.g. {@code "router"}. */
    String file() {
        return file;
    }

    /** The {@code extern "C"} / {@code __kernel} function name. */
    String entryPoint() {
        return entryPoint;
    }
}

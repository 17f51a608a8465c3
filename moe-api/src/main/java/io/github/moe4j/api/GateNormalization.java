package io.github.moe4j.api;

/** How a token's gate values are made from its router logits (SPEC §3). */
public enum GateNormalization {
    /**
     * The full softmax probability of each selected expert, not renormalised:
     * \( g_{t,e} = p_{t,e} \). Switch Transformer, flaxformer/T5X, DeepSpeed top-1.
     */
    NONE,
    /**
     * Softmax over the selected experts' logits only:
     * \( g_{t,e} = e^{z_{t,e}} / \sum_{j \in S_t} e^{z_{t,j}} \), which equals
     * softmax, then top-k, then renormalise. GShard, Mixtral, DeepSpeed top-2 and top-k.
     */
    RENORMALIZE
}

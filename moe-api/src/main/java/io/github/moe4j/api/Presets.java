package io.github.moe4j.api;

/**
 * Configurations that reproduce a published implementation's conventions (SPEC §9). Each returns a
 * {@link MoeConfig.Builder} with the router, capacity, priority, losses and expert kind set; the
 * caller sets the sizes:
 *
 * <pre>{@code
 * MoeConfig config = Presets.mixtral().modelDim(512).hiddenDim(2048).experts(8).build();
 * }</pre>
 *
 * The golden cases in the reference's tests check each against numbers produced by the code it names.
 */
public final class Presets {
    private Presets() {}

    /**
     * Switch Transformer top-1: gate = full softmax probability, capacity
     * \( \max(4, \lfloor 1.25\,T/E \rfloor) \), rank-major, \( \alpha = 0.01 \) with first-choice f,
     * multiplicative jitter \( \varepsilon = 10^{-2} \) (router only), ReLU experts.
     *
     * <pre>
     * Fedus, W., Zoph, B., Shazeer, N. "Switch Transformers: Scaling to Trillion Parameter Models
     * with Simple and Efficient Sparsity." JMLR 23 (2022). arXiv:2101.03961, Section 2.1–2.2.
     * </pre>
     * Mirrors tensorflow/mesh {@code mesh_tensorflow/transformer/moe.py} {@code _switch_gating} and
     * {@code transformer_moe_layer_v1} (capacity).
     */
    public static MoeConfig.Builder switchTop1() {
        return MoeConfig.builder()
                .activation(Activation.RELU)
                .router(new TokenChoiceRouterConfig(1, GateNormalization.NONE, RenormTiming.BEFORE_CAPACITY,
                        SecondExpertPolicy.ALL, 1e-2, TokenChoiceRouterConfig.JitterTarget.ROUTER_ONLY))
                .capacity(Capacity.factor(1.25, CapacityBase.TOKENS, Rounding.FLOOR, 4))
                .priority(Priority.RANK_MAJOR)
                .losses(LossWeights.of().aux(0.01, AuxNormalization.TOP1));
    }

    /**
     * GShard top-2: gates renormalised over the two choices before capacity, capacity
     * \( \max(4, \lceil 1.25 \cdot 2T/E \rceil) \), rank-major, \( \alpha = 0.01 \) with first-choice f,
     * every second choice kept (use {@link SecondExpertPolicy#random(double)} for the paper's
     * random policy).
     *
     * <pre>
     * Lepikhin, D. et al. "GShard: Scaling Giant Models with Conditional Computation and Automatic
     * Sharding." ICLR 2021. arXiv:2006.16668, Algorithm 2.
     * </pre>
     * Mirrors tensorflow/mesh {@code mesh_tensorflow/transformer/moe.py} {@code _top_2_gating}.
     */
    public static MoeConfig.Builder gshardTop2() {
        return MoeConfig.builder()
                .activation(Activation.RELU)
                .router(TokenChoiceRouterConfig.topK(2))
                .capacity(Capacity.factor(1.25, CapacityBase.ASSIGNMENTS, Rounding.CEIL, 4))
                .priority(Priority.RANK_MAJOR)
                .losses(LossWeights.of().aux(0.01, AuxNormalization.TOP1));
    }

    /**
     * ST-MoE / T5X token choice: top-2 with raw probability gates, capacity
     * \( \max(4, \mathrm{round}(1.25\,T/E)) \) (not multiplied by k), rank-major, \( \alpha = 0.01 \)
     * counting all k choices, router z-loss \( \beta = 10^{-3} \), GEGLU experts.
     *
     * <pre>
     * Zoph, B. et al. "ST-MoE: Designing Stable and Transferable Sparse Expert Models."
     * arXiv:2202.08906, 2022, Section 3.1 (router z-loss) and Appendix B.
     * </pre>
     * Mirrors google/flaxformer {@code flaxformer/architectures/moe/routing.py}
     * {@code TokensChooseMaskedRouter}, {@code _load_balancing_loss}, {@code _router_z_loss}, and
     * {@code moe_layers.py} {@code MoeLayer} (capacity).
     */
    public static MoeConfig.Builder stMoe() {
        return MoeConfig.builder()
                .activation(Activation.GEGLU)
                .router(TokenChoiceRouterConfig.topK(2).withGates(GateNormalization.NONE))
                .capacity(Capacity.factor(1.25, CapacityBase.TOKENS, Rounding.ROUND_HALF_EVEN, 4))
                .priority(Priority.RANK_MAJOR)
                .losses(LossWeights.of().aux(0.01, AuxNormalization.TOPK_COUNT).z(1e-3));
    }

    /**
     * Mixtral: softmax, top-2, renormalise; nothing dropped; SwiGLU experts; \( \alpha = 10^{-3} \)
     * (Hugging Face {@code MixtralConfig.router_aux_loss_coef}) counting all k choices.
     *
     * <pre>
     * Jiang, A. Q. et al. "Mixtral of Experts." arXiv:2401.04088, 2024, Section 2.1.
     * </pre>
     * Mirrors huggingface/transformers {@code src/transformers/models/mixtral/modeling_mixtral.py}
     * {@code MixtralSparseMoeBlock} and {@code load_balancing_loss_func}.
     */
    public static MoeConfig.Builder mixtral() {
        return MoeConfig.builder()
                .activation(Activation.SWIGLU)
                .router(TokenChoiceRouterConfig.topK(2))
                .capacity(Capacity.dropless())
                .priority(Priority.RANK_MAJOR)
                .losses(LossWeights.of().aux(1e-3, AuxNormalization.TOPK_COUNT));
    }

    /**
     * DeepSpeed top-1: raw probability gate, capacity \( \max(4, \lceil T/E \rceil) \), rank-major
     * (DeepSpeed's default random token selection is not reproduced), first-choice f, ReLU experts
     * with biases.
     *
     * Mirrors deepspeedai/DeepSpeed {@code deepspeed/moe/sharded_moe.py} {@code top1gating} with
     * {@code use_rts=False}.
     */
    public static MoeConfig.Builder deepSpeedTop1() {
        return MoeConfig.builder()
                .activation(Activation.RELU)
                .expertBias(true)
                .router(TokenChoiceRouterConfig.topK(1).withGates(GateNormalization.NONE))
                .capacity(Capacity.factor(1.0, CapacityBase.ASSIGNMENTS, Rounding.CEIL, 4))
                .priority(Priority.RANK_MAJOR)
                .losses(LossWeights.of().aux(0.01, AuxNormalization.TOP1));
    }

    /**
     * DeepSpeed top-2: gates renormalised over the kept choices after capacity, capacity
     * \( \max(4, \lceil 2T/E \rceil) \), rank-major, first-choice f, ReLU experts with biases.
     *
     * Mirrors deepspeedai/DeepSpeed {@code deepspeed/moe/sharded_moe.py} {@code top2gating}.
     */
    public static MoeConfig.Builder deepSpeedTop2() {
        return MoeConfig.builder()
                .activation(Activation.RELU)
                .expertBias(true)
                .router(TokenChoiceRouterConfig.topK(2).withRenormTiming(RenormTiming.AFTER_CAPACITY))
                .capacity(Capacity.factor(1.0, CapacityBase.ASSIGNMENTS, Rounding.CEIL, 4))
                .priority(Priority.RANK_MAJOR)
                .losses(LossWeights.of().aux(0.01, AuxNormalization.TOP1));
    }

    /**
     * DeepSpeed top-k: gates renormalised after capacity, capacity \( \max(4, \lceil kT/E \rceil) \),
     * each expert keeps its largest gates ({@link Priority#GATE_VALUE}), f over all k divided by k.
     *
     * Mirrors deepspeedai/DeepSpeed {@code deepspeed/moe/sharded_moe.py} {@code topkgating} with
     * {@code drop_policy='probs'}.
     */
    public static MoeConfig.Builder deepSpeedTopK(int k) {
        return MoeConfig.builder()
                .activation(Activation.RELU)
                .expertBias(true)
                .router(TokenChoiceRouterConfig.topK(k).withRenormTiming(RenormTiming.AFTER_CAPACITY))
                .capacity(Capacity.factor(1.0, CapacityBase.ASSIGNMENTS, Rounding.CEIL, 4))
                .priority(Priority.GATE_VALUE)
                .losses(LossWeights.of().aux(0.01, AuxNormalization.TOPK_NORMALIZED));
    }

    /**
     * Shazeer's noisy top-k: learned noise, softmax over the k largest noisy logits, nothing dropped,
     * importance and load losses with weight 0.01 each (t2t {@code loss_coef}).
     *
     * <pre>
     * Shazeer, N. et al. "Outrageously Large Neural Networks: The Sparsely-Gated Mixture-of-Experts
     * Layer." ICLR 2017. arXiv:1701.06538, Section 2.1, Appendix A.
     * </pre>
     * Mirrors tensorflow/tensor2tensor {@code tensor2tensor/utils/expert_utils.py}
     * {@code noisy_top_k_gating} and {@code local_moe}.
     */
    public static MoeConfig.Builder shazeerNoisyTopK(int k) {
        return MoeConfig.builder()
                .activation(Activation.RELU)
                .router(NoisyTopKRouterConfig.of(k))
                .capacity(Capacity.dropless())
                .priority(Priority.RANK_MAJOR)
                .losses(LossWeights.of().importance(0.01).load(0.01));
    }

    /**
     * Expert choice: each expert takes its \( C = \max(1, \lceil cf \cdot T/E \rceil) \) best tokens,
     * gates are the softmax probabilities, no balancing loss.
     *
     * <pre>
     * Zhou, Y. et al. "Mixture-of-Experts with Expert Choice Routing." NeurIPS 2022.
     * arXiv:2202.09368, Section 3.1.
     * </pre>
     * Mirrors google/flaxformer {@code flaxformer/architectures/moe/routing.py}
     * {@code ExpertsChooseMaskedRouter}.
     */
    public static MoeConfig.Builder expertChoice(double capacityFactor) {
        return MoeConfig.builder()
                .activation(Activation.RELU)
                .router(new ExpertChoiceRouterConfig())
                .capacity(Capacity.factor(capacityFactor, CapacityBase.TOKENS, Rounding.CEIL, 1))
                .priority(Priority.RANK_MAJOR)
                .losses(LossWeights.of());
    }
}

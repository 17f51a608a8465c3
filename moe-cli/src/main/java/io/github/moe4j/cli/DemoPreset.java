package io.github.moe4j.cli;

import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.Presets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import picocli.CommandLine;

/**
 * The {@link Presets} the demo can run, by their command-line names. Each says in a line what it
 * is and which upstream code its numbers reproduce (the preset's javadoc has the paper).
 */
enum DemoPreset {
    /** {@link Presets#mixtral()}. */
    MIXTRAL("mixtral", "Mixtral top-2: gates renormalised over the two, nothing dropped, SwiGLU experts",
            "huggingface/transformers modeling_mixtral.py MixtralSparseMoeBlock", Presets::mixtral),
    /** {@link Presets#switchTop1()}. */
    SWITCH("switch", "Switch Transformer top-1: gate = softmax probability, router jitter in training",
            "tensorflow/mesh moe.py _switch_gating", Presets::switchTop1),
    /** {@link Presets#gshardTop2()}. */
    GSHARD("gshard", "GShard top-2: gates renormalised over the two before capacity",
            "tensorflow/mesh moe.py _top_2_gating", Presets::gshardTop2),
    /** {@link Presets#stMoe()}. */
    ST_MOE("st-moe", "ST-MoE top-2: gates = softmax probabilities, router z-loss, GEGLU experts",
            "google/flaxformer routing.py TokensChooseMaskedRouter", Presets::stMoe),
    /** {@link Presets#deepSpeedTop1()}. */
    DEEPSPEED_TOP1("deepspeed-top1", "DeepSpeed top-1: gate = softmax probability, ReLU experts with biases",
            "deepspeed/moe/sharded_moe.py top1gating", Presets::deepSpeedTop1),
    /** {@link Presets#deepSpeedTop2()}. */
    DEEPSPEED_TOP2("deepspeed-top2", "DeepSpeed top-2: gates renormalised over the kept choices, after capacity",
            "deepspeed/moe/sharded_moe.py top2gating", Presets::deepSpeedTop2),
    /** {@link Presets#shazeerNoisyTopK(int)} with k = 2. */
    NOISY_TOP_K("noisy-top-k", "Shazeer et al. 2017 noisy top-k, k = 2: learned logit noise in training, importance and load losses",
            "tensorflow/tensor2tensor expert_utils.py noisy_top_k_gating", () -> Presets.shazeerNoisyTopK(2)),
    /** {@link Presets#expertChoice(double)}. */
    EXPERT_CHOICE("expert-choice", "Expert choice (Zhou et al. 2022): each expert takes its C best tokens",
            "google/flaxformer routing.py ExpertsChooseMaskedRouter", () -> Presets.expertChoice(1.0));

    private final String cliName;
    private final String summary;
    private final String mirrors;
    private final Supplier<MoeConfig.Builder> builder;

    DemoPreset(String cliName, String summary, String mirrors, Supplier<MoeConfig.Builder> builder) {
        this.cliName = cliName;
        this.summary = summary;
        this.mirrors = mirrors;
        this.builder = builder;
    }

    /** A one-line description for a newcomer. */
    String summary() {
        return summary;
    }

    /** The upstream file and function whose numbers the preset reproduces. */
    String mirrors() {
        return mirrors;
    }

    /** A fresh builder of the preset; the caller sets the sizes. */
    MoeConfig.Builder builder() {
        return builder.get();
    }

    /** The command-line name, e.g. {@code st-moe}; picocli lists the values by it. */
    @Override
    public String toString() {
        return cliName;
    }

    /** Parses a command-line name; the message of a wrong one lists the names there are. */
    static final class Converter implements CommandLine.ITypeConverter<DemoPreset> {
        @Override
        public DemoPreset convert(String value) {
            List<String> names = new ArrayList<>();
            for (DemoPreset p : values()) {
                if (p.cliName.equals(value)) {
                    return p;
                }
                names.add(p.cliName);
            }
            throw new CommandLine.TypeConversionException("'" + value + "' is not a preset; expected one of " + String.join(", ", names));
        }
    }
}

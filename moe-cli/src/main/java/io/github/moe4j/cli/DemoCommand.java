package io.github.moe4j.cli;

import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeBackends;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Noise;
import io.github.moe4j.api.Support;
import io.github.moe4j.api.Tensor;
import java.util.concurrent.Callable;
import org.apache.commons.rng.sampling.distribution.ZigguratSampler;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code moe4j demo}: builds a small layer from a preset (d = {@value #MODEL_DIM},
 * h = {@value #HIDDEN_DIM}), draws its weights and a batch of tokens from a seed, runs one forward
 * pass on a backend and prints what happened ({@link DemoReport}). The same options always print
 * the same text.
 */
@Command(name = "demo",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {"Runs one small sparse Mixture-of-Experts layer on seeded random tokens and shows how it routed them.",
            "",
            "The layer has d = " + DemoCommand.MODEL_DIM + " and h = " + DemoCommand.HIDDEN_DIM + ". The demo prints which experts each"
                + " token went to, with what gate, which assignments were dropped for lack of capacity, how loaded"
                + " each expert was, and the auxiliary losses. The same options always print the same text.",
            ""})
final class DemoCommand implements Callable<Integer> {
    /** d: small, so the demo is instant. */
    static final int MODEL_DIM = 8;
    /** h. */
    static final int HIDDEN_DIM = 16;
    /**
     * The capacity factor the demo uses unless told otherwise: below the 1.25 of switch, gshard and
     * st-moe, so that a router that is not perfectly balanced drops a few assignments.
     */
    static final double DEFAULT_CAPACITY_FACTOR = 1.0;
    static final int MAX_TOKENS = 4096;
    static final int MAX_EXPERTS = 64;
    /** Mixed into the seed for the input, so that the input and the weights are independent streams. */
    private static final long INPUT_STREAM = 0x696E707574L;

    @Spec
    private CommandSpec spec;

    @Option(names = "--preset", paramLabel = "NAME", converter = DemoPreset.Converter.class,
            description = "the layer's conventions: ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE})")
    private DemoPreset preset = DemoPreset.GSHARD;

    @Option(names = "--tokens", paramLabel = "T", description = "tokens in the batch, 1 to " + MAX_TOKENS + " (default: ${DEFAULT-VALUE})")
    private int tokens = 16;

    @Option(names = "--experts", paramLabel = "E", description = "number of experts, 1 to " + MAX_EXPERTS + " (default: ${DEFAULT-VALUE})")
    private int experts = 4;

    @Option(names = "--capacity-factor", paramLabel = "CF",
            description = "capacity factor of the presets that have one (all but mixtral and noisy-top-k); default "
                    + DEFAULT_CAPACITY_FACTOR + ", which drops a few assignments (switch, gshard and st-moe use 1.25)")
    private Double capacityFactor;

    @Option(names = "--seed", paramLabel = "SEED", description = "seed of the weights, the input and the training noise (default: ${DEFAULT-VALUE})")
    private long seed = ForwardOptions.DEFAULT_SEED;

    @Option(names = "--backend", paramLabel = "NAME", description = "run on this backend (see 'moe4j backends'); default: the best available")
    private String backend;

    @Option(names = "--training", description = "training mode: draw the preset's noise (jitter, logit noise) from the seed")
    private boolean training;

    /** For picocli. */
    DemoCommand() {}

    @Override
    public Integer call() {
        requireInRange("--tokens", tokens, MAX_TOKENS);
        requireInRange("--experts", experts, MAX_EXPERTS);
        MoeConfig config = config();
        MoeWeights weights = MoeWeights.random(config, seed);
        Tensor input = randomInput(seed, tokens, MODEL_DIM);
        ForwardOptions options = training ? ForwardOptions.training(seed, 0) : ForwardOptions.inference();
        try (MoeBackend b = backend == null ? MoeBackends.best() : MoeBackends.open(backend)) {
            Support support = b.supports(config);
            if (!support.supported()) {
                throw new IllegalArgumentException("backend '" + b.name() + "' does not run preset " + preset + ": "
                        + support.reason() + " (Hint: try --backend reference)");
            }
            try (MoeLayer layer = b.createLayer(config, weights);
                 MoeForward forward = layer.forward(input, options)) {
                DemoReport report = new DemoReport(preset, presetCapacityFactor(), config, b.name(), b.device(),
                        options.mode(), seed, forward.output(), forward.routing(), forward.losses());
                report.print(spec.commandLine().getOut());
            }
        }
        return 0;
    }

    private void requireInRange(String option, int value, int max) {
        if (value < 1 || value > max) {
            throw new ParameterException(spec.commandLine(), option + " must be in [1, " + max + "], got " + value);
        }
    }

    /** The preset at the demo's sizes, with the capacity factor replaced. */
    private MoeConfig config() {
        MoeConfig config;
        try {
            config = preset.builder().modelDim(MODEL_DIM).hiddenDim(HIDDEN_DIM).experts(experts).build();
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "preset " + preset + " does not fit --experts " + experts + ": " + e.getMessage());
        }
        if (!(config.capacity() instanceof Capacity.Factor f)) {
            if (capacityFactor != null) {
                throw new ParameterException(spec.commandLine(), "--capacity-factor does not apply to preset " + preset
                        + ", which drops nothing (its capacity is unlimited)");
            }
            return config;
        }
        double cf = capacityFactor == null ? DEFAULT_CAPACITY_FACTOR : capacityFactor;
        if (!(cf > 0 && cf < Double.POSITIVE_INFINITY)) {
            throw new ParameterException(spec.commandLine(), "--capacity-factor must be positive and finite, got " + cf);
        }
        return config.toBuilder().capacity(Capacity.factor(cf, f.base(), f.rounding(), f.minCapacity())).build();
    }

    /** The capacity factor the preset itself uses, or NaN if it has none. */
    private double presetCapacityFactor() {
        Capacity c = preset.builder().modelDim(MODEL_DIM).hiddenDim(HIDDEN_DIM).experts(experts).build().capacity();
        return c instanceof Capacity.Factor f ? f.factor() : Double.NaN;
    }

    /**
     * [T, d] standard normal tokens, a deterministic function of the seed: Commons RNG
     * {@code XO_SHI_RO_256_PP} seeded by {@link Noise#generator} with {@code (seed, 0, INPUT_STREAM)}, Ziggurat
     * normal sampler, row-major.
     */
    static Tensor randomInput(long seed, int tokens, int modelDim) {
        ZigguratSampler.NormalizedGaussian normal = ZigguratSampler.NormalizedGaussian.of(
                Noise.generator(seed, 0, INPUT_STREAM));
        float[] x = new float[tokens * modelDim];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) normal.sample();
        }
        return Tensor.of(x, tokens, modelDim);
    }
}

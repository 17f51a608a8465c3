package io.github.moe4j.conformance.broken;

import io.github.moe4j.api.AuxNormalization;
import io.github.moe4j.api.Capacity;
import io.github.moe4j.api.ExpertChoiceRouterConfig;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.Freeze;
import io.github.moe4j.api.GateNormalization;
import io.github.moe4j.api.LossWeights;
import io.github.moe4j.api.Mode;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeGradients;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeLosses;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Priority;
import io.github.moe4j.api.RenormTiming;
import io.github.moe4j.api.Routing;
import io.github.moe4j.api.SecondExpertPolicy;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.api.TokenChoiceRouterConfig;
import io.github.moe4j.reference.ReferenceForward;
import io.github.moe4j.reference.ReferenceLayer;
import io.github.moe4j.reference.Softmax;
import java.util.Set;

/** A reference layer with one deliberate bug; see {@link Breakage} for each. */
final class BrokenLayer implements MoeLayer {
    private final Breakage breakage;
    private final MoeConfig config;
    private final MoeWeights weights;
    private final ReferenceLayer reference;
    private long calls;

    BrokenLayer(Breakage breakage, MoeConfig config, MoeWeights weights) {
        this.breakage = breakage;
        this.config = config;
        this.weights = weights;
        this.reference = new ReferenceLayer(config, weights);
    }

    @Override
    public MoeConfig config() {
        return config;
    }

    /** The forward result: what the broken layer reports, and the reference run backward uses. */
    record Result(BrokenLayer owner, ReferenceLayer innerLayer, ReferenceForward inner, Tensor input, ForwardOptions options,
                  Tensor output, Routing routing, MoeLosses losses) implements MoeForward {
        @Override
        public void close() {
            // nothing to release
        }
    }

    private Result plain(ReferenceLayer layer, ReferenceForward f, Tensor input, ForwardOptions options) {
        return new Result(this, layer, f, input, options, f.output(), f.routing(), f.losses());
    }

    private Result run(MoeConfig modified, MoeWeights w, Tensor input, ForwardOptions options) {
        ReferenceLayer layer = new ReferenceLayer(modified, w);
        return plain(layer, (ReferenceForward) layer.forward(input, options), input, options);
    }

    @Override
    public MoeForward forward(Tensor input, ForwardOptions options) {
        calls++;
        switch (breakage) {
            case WRONG_TIE_BREAK: {
                ReferenceLayer inner = new ReferenceLayer(config, Relabel.weights(weights, config));
                ReferenceForward f = (ReferenceForward) inner.forward(input, options);
                return new Result(this, inner, f, input, options, f.output(), Relabel.routing(f.routing(), config), f.losses());
            }
            case NO_RENORMALIZATION:
                if (config.router() instanceof TokenChoiceRouterConfig t && t.gates() == GateNormalization.RENORMALIZE) {
                    return run(config.toBuilder().router(t.withSecondExpertPolicy(SecondExpertPolicy.ALL).withGates(GateNormalization.NONE))
                            .build(), weights, input, options);
                }
                break;
            case RENORMALIZES_AFTER_CAPACITY_INSTEAD_OF_BEFORE:
                if (config.router() instanceof TokenChoiceRouterConfig t && t.renormTiming() == RenormTiming.BEFORE_CAPACITY) {
                    return run(config.toBuilder().router(t.withRenormTiming(RenormTiming.AFTER_CAPACITY)).build(), weights, input, options);
                }
                break;
            case CAPACITY_OFF_BY_ONE: {
                ReferenceForward real = (ReferenceForward) reference.forward(input, options);
                int cap = real.plan().capacity();
                if (config.capacity() instanceof Capacity.Dropless || cap == Routing.UNLIMITED) {
                    return plain(reference, real, input, options);
                }
                Result r = run(config.toBuilder().capacity(Capacity.fixed(cap + 1)).build(), weights, input, options);
                Routing x = r.routing();
                Routing reported = new Routing(x.tokens(), x.experts(), x.choicesPerToken(), x.groups(), cap, x.experts2d(), x.gates(),
                        x.slots(), x.load(), x.kept());
                return new Result(this, r.innerLayer(), r.inner(), input, options, r.output(), reported, r.losses());
            }
            case RANK_MAJOR_AND_TOKEN_MAJOR_SWAPPED:
                if (config.priority() == Priority.RANK_MAJOR || config.priority() == Priority.TOKEN_MAJOR) {
                    Priority swapped = config.priority() == Priority.RANK_MAJOR ? Priority.TOKEN_MAJOR : Priority.RANK_MAJOR;
                    return run(config.toBuilder().priority(swapped).build(), weights, input, options);
                }
                break;
            case DROPPED_ASSIGNMENT_NOT_ZERO: {
                ReferenceForward real = (ReferenceForward) reference.forward(input, options);
                if (config.router() instanceof ExpertChoiceRouterConfig || config.capacity() instanceof Capacity.Dropless) {
                    return plain(reference, real, input, options);
                }
                ReferenceLayer dropless = new ReferenceLayer(config.toBuilder().capacity(Capacity.dropless()).build(), weights);
                Tensor y = dropless.forward(input, options).output();
                return new Result(this, reference, real, input, options, y, real.routing(), real.losses());
            }
            case AUX_F_NORMALISED_THE_WRONG_WAY: {
                LossWeights l = config.losses();
                AuxNormalization wrong = switch (l.auxNormalization()) {
                    case TOPK_NORMALIZED -> AuxNormalization.TOPK_COUNT;
                    case TOPK_COUNT -> AuxNormalization.TOPK_NORMALIZED;
                    case TOP1 -> AuxNormalization.TOP1;
                };
                return run(config.toBuilder().losses(l.aux(l.aux(), wrong)).build(), weights, input, options);
            }
            case Z_LOSS_ON_PROBABILITIES: {
                ReferenceForward real = (ReferenceForward) reference.forward(input, options);
                MoeLosses l = real.losses();
                double z = zLossOfProbabilities(real, options.groups());
                MoeLosses wrong = MoeLosses.weighted(l.aux(), z, l.importance(), l.load(), config.losses());
                return new Result(this, reference, real, input, options, real.output(), real.routing(), wrong);
            }
            case JITTER_FED_TO_THE_EXPERTS:
                if (config.router() instanceof TokenChoiceRouterConfig t && t.jitter() > 0) {
                    return run(config.toBuilder().router(t.withJitter(t.jitter(), TokenChoiceRouterConfig.JitterTarget.ROUTER_AND_EXPERTS))
                            .build(), weights, input, options);
                }
                break;
            case PADDING_MASK_IGNORED_IN_THE_LOSSES: {
                ReferenceForward real = (ReferenceForward) reference.forward(input, options);
                ForwardOptions unmasked = new ForwardOptions(options.mode(), options.seed(), options.step(), options.groups(), null, options.noise());
                MoeLosses wrong = reference.forward(input, unmasked).losses();
                return new Result(this, reference, real, input, options, real.output(), real.routing(), wrong);
            }
            case OUTPUT_DIFFERS_BETWEEN_IDENTICAL_CALLS: {
                ReferenceForward real = (ReferenceForward) reference.forward(input, options);
                float[] y = real.output().toArray();
                if (y.length > 0) {
                    int i = (int) (calls % y.length);
                    y[i] = Math.nextUp(y[i]);
                }
                return new Result(this, reference, real, input, options, Tensor.of(y, real.output().shape()), real.routing(), real.losses());
            }
            case UNWEIGHTED_COMBINE: {
                ReferenceForward real = (ReferenceForward) reference.forward(input, options);
                return new Result(this, reference, real, input, options, unweighted(real), real.routing(), real.losses());
            }
            case NOISE_IN_INFERENCE:
                if (options.mode() == Mode.INFERENCE) {
                    ForwardOptions noisy = new ForwardOptions(Mode.TRAINING, options.seed(), options.step(), options.groups(),
                            options.paddingMask(), null);
                    ReferenceForward f = (ReferenceForward) reference.forward(input, noisy);
                    return plain(reference, f, input, noisy);
                }
                break;
            case NON_FINITE_INPUT_ACCEPTED: {
                float[] x = input.toArray();
                for (int i = 0; i < x.length; i++) {
                    x[i] = Float.isFinite(x[i]) ? x[i] : 0f;
                }
                Tensor cleaned = Tensor.of(x, input.shape());
                return plain(reference, (ReferenceForward) reference.forward(cleaned, options), cleaned, options);
            }
            default:
                break;
        }
        return plain(reference, (ReferenceForward) reference.forward(input, options), input, options);
    }

    @Override
    public MoeGradients backward(MoeForward forward, Tensor dOutput, Set<Freeze> frozen) {
        if (!(forward instanceof Result r) || r.owner() != this) {
            throw new IllegalArgumentException("forward is not a result of this layer");
        }
        switch (breakage) {
            case WRONG_TIE_BREAK:
                return Relabel.gradients(r.innerLayer().backward(r.inner(), dOutput, frozen), config);
            case GRADIENT_MISSING_THE_LOSS_TERMS: {
                ReferenceLayer noLosses = new ReferenceLayer(config.toBuilder().losses(LossWeights.of()).build(), weights);
                ReferenceForward f = noLosses.forwardWithRouting(r.input(), r.routing(), r.options());
                return noLosses.backward(f, dOutput, frozen);
            }
            case FROZEN_GROUPS_GET_GRADIENTS:
                return r.innerLayer().backward(r.inner(), dOutput, Set.of());
            default:
                return r.innerLayer().backward(r.inner(), dOutput, frozen);
        }
    }

    @Override
    public void close() {
        // nothing to release
    }

    /** mean over each group's real tokens of lse(p_t)^2, averaged over groups: the bug. */
    private double zLossOfProbabilities(ReferenceForward f, int groups) {
        int t = f.tokens();
        int e = config.experts();
        int size = groups == 0 ? 0 : t / groups;
        double sum = 0;
        for (int g = 0; g < groups; g++) {
            double s = 0;
            int n = 0;
            for (int i = g * size; i < (g + 1) * size; i++) {
                if (f.router().realTokens()[i]) {
                    double lse = Softmax.logSumExp(f.router().probs(), i * e, e);
                    s += lse * lse;
                    n++;
                }
            }
            sum += n == 0 ? 0 : s / n;
        }
        return sum / groups;
    }

    /** y_t = sum of the kept experts' outputs, gates ignored. */
    private Tensor unweighted(ReferenceForward f) {
        int t = f.tokens();
        int d = config.modelDim();
        int m = config.choicesPerToken();
        double[] y = new double[t * d];
        for (int i = 0; i < t; i++) {
            for (int j = 0; j < m; j++) {
                int row = f.dispatch().rowOf()[i * m + j];
                if (row >= 0) {
                    double[] out = f.experts().activations()[f.plan().selected()[i * m + j]][row].output();
                    for (int c = 0; c < d; c++) {
                        y[i * d + c] += out[c];
                    }
                }
            }
        }
        return Tensor.ofDoubles(y, t, d);
    }
}

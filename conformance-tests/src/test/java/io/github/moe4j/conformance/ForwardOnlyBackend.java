package io.github.moe4j.conformance;

import io.github.moe4j.api.Freeze;
import io.github.moe4j.api.ForwardOptions;
import io.github.moe4j.api.MoeBackend;
import io.github.moe4j.api.MoeConfig;
import io.github.moe4j.api.MoeForward;
import io.github.moe4j.api.MoeGradients;
import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Support;
import io.github.moe4j.api.Tensor;
import io.github.moe4j.reference.ReferenceBackend;
import java.util.Set;

/**
 * The reference, declaring backward unsupported (as a GPU backend without backward kernels does):
 * the suite must count every backward try as unsupported, with the reason, and fail nothing.
 */
public final class ForwardOnlyBackend implements MoeBackend {
    /** The reason it gives. */
    public static final String REASON = "backward kernels are not written in this test backend";

    @Override
    public String name() {
        return "forward-only-test";
    }

    @Override
    public String device() {
        return "the reference without backward";
    }

    @Override
    public Support supports(MoeConfig config) {
        return Support.forwardOnly(REASON);
    }

    @Override
    public MoeLayer createLayer(MoeConfig config, MoeWeights weights) {
        MoeLayer inner = ReferenceBackend.INSTANCE.createLayer(config, weights);
        return new MoeLayer() {
            @Override
            public MoeConfig config() {
                return inner.config();
            }

            @Override
            public MoeForward forward(Tensor input, ForwardOptions options) {
                return inner.forward(input, options);
            }

            @Override
            public MoeGradients backward(MoeForward forward, Tensor dOutput, Set<Freeze> frozen) {
                throw new UnsupportedOperationException(REASON);
            }

            @Override
            public void close() {
                inner.close();
            }
        };
    }

    @Override
    public void close() {
        // nothing to release
    }
}

package io.github.moe4j.cuda;


import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The same cases as {@link PoclForwardTest}, on a real CUDA device through the JCuda runtime. Each
 * test is skipped, visibly and with the probe's reason, where CUDA is unavailable (every machine this
 * project has had so far): until this runs on a GPU, the JCuda layer is unverified.
 */
class CudaGpuForwardTest extends CudaGpuBackendTest {

    /** Each case agrees with the reference on the GPU as on PoCL. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.moe4j.cuda.PoclForwardTest#cases")
    void forwardMatchesReference(PoclForwardTest.Case c) {
        MoeWeights w = MoeWeights.random(c.config(), 1000 + c.tokens());
        try (MoeLayer layer = backend.createLayer(c.config(), w)) {
            ForwardAgreement.Report report = ForwardAgreement.check(layer, w,
                    PoclForwardTest.randomInput(c.tokens(), c.config().modelDim(), c.tokens()), c.options());
            System.out.println("[CUDA " + backend.device() + "] " + c.name() + ": " + report);
        }
    }

    /** Each noisy top-k case agrees with the reference on the GPU as on PoCL. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.moe4j.cuda.PoclForwardTest#noisyCases")
    void noisyForwardMatchesReference(PoclForwardTest.Case c) {
        forwardMatchesReference(c);
    }

    /** Each expert-choice case agrees with the reference on the GPU as on PoCL. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.moe4j.cuda.PoclForwardTest#expertChoiceCases")
    void expertChoiceForwardMatchesReference(PoclForwardTest.Case c) {
        forwardMatchesReference(c);
    }
}

package io.github.moe4j.cuda;


import io.github.moe4j.api.MoeLayer;
import io.github.moe4j.api.MoeWeights;
import io.github.moe4j.api.Tensor;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The same backward cases as {@link PoclBackwardTest}, on a real CUDA device through the JCuda
 * runtime (cuBLAS GEMMs with transposed operands and accumulation). Each test is skipped, visibly and
 * with the probe's reason, where CUDA is unavailable: until this runs on a GPU, the JCuda backward is
 * unverified.
 */
class CudaGpuBackwardTest extends CudaGpuBackendTest {

    /** Each case's gradients agree with the reference on the GPU as on PoCL. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.moe4j.cuda.PoclForwardTest#cases")
    void backwardMatchesReference(PoclForwardTest.Case c) {
        MoeWeights w = MoeWeights.random(c.config(), 1000 + c.tokens());
        Tensor x = PoclForwardTest.randomInput(c.tokens(), c.config().modelDim(), c.tokens());
        Tensor dY = PoclForwardTest.randomInput(c.tokens(), c.config().modelDim(), 77 + c.tokens());
        try (MoeLayer layer = backend.createLayer(c.config(), w)) {
            BackwardAgreement.Report report = BackwardAgreement.check(layer, w, x, c.options(), dY, Set.of());
            System.out.println("[CUDA " + backend.device() + " backward] " + c.name() + ": " + report);
        }
    }

    /** Each noisy top-k case's gradients agree with the reference on the GPU as on PoCL. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.moe4j.cuda.PoclForwardTest#noisyCases")
    void noisyBackwardMatchesReference(PoclForwardTest.Case c) {
        backwardMatchesReference(c);
    }

    /** Each expert-choice case's gradients agree with the reference on the GPU as on PoCL. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.moe4j.cuda.PoclForwardTest#expertChoiceCases")
    void expertChoiceBackwardMatchesReference(PoclForwardTest.Case c) {
        backwardMatchesReference(c);
    }
}

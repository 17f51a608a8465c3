package io.github.moe4j.api;

import java.util.Set;

/**
 * A sparse mixture-of-experts layer with fixed weights: routes each token to experts and combines
 * their outputs with the gate values.
 *
 * <p>Order of use: {@link #forward} → (optionally) {@link #backward} with the {@link MoeForward}
 * that forward returned, → {@link MoeForward#close()}; {@link #close()} when done with the layer.
 * Calling backward with a forward result of another layer throws {@link IllegalArgumentException}.
 *
 * <p>Layers are not thread-safe: use one per thread. Backends are.
 */
public interface MoeLayer extends AutoCloseable {

    /** The configuration this layer was created with. */
    MoeConfig config();

    /**
     * Runs the layer.
     *
     * @param input   [T, d], row-major; T may be 0
     * @param options inference or training, groups, padding, noise
     * @throws IllegalArgumentException if a shape or option is wrong
     * @throws NonFiniteException       if the input holds a NaN or infinity
     */
    MoeForward forward(Tensor input, ForwardOptions options);

    /**
     * Gradients of \( \sum dY \odot y \) plus the weighted losses, with respect to the input and
     * every parameter not in {@code frozen} (SPEC §10).
     *
     * @param forward the result of this layer's {@link #forward}
     * @param dOutput [T, d], the gradient of the loss with respect to the output
     * @param frozen  parameter groups that get no gradient (their work is skipped)
     * @throws UnsupportedOperationException if the backend's {@link MoeBackend#supports} says
     *                                       {@link Support#backward()} is false for this
     *                                       configuration, with its reason
     */
    MoeGradients backward(MoeForward forward, Tensor dOutput, Set<Freeze> frozen);

    /** Releases the layer's resources; closing twice is harmless. */
    @Override
    void close();
}

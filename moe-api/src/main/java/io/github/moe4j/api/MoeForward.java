package io.github.moe4j.api;

/**
 * The result of {@link MoeLayer#forward}: the output, the routing and the losses, plus whatever
 * the backend keeps for {@link MoeLayer#backward} (on the device for GPU backends). Close it to
 * release that; closing twice is harmless.
 */
public interface MoeForward extends AutoCloseable {

    /** [T, d] the layer's output \( y_t = \sum_{\text{kept}\ (t,e)} g_{t,e} f_e(x_t) \). */
    Tensor output();

    /** The routing decision. */
    Routing routing();

    /** The auxiliary losses and their weighted total. */
    MoeLosses losses();

    /** Releases what was kept for backward. */
    @Override
    void close();
}

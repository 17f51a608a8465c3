package io.github.moe4j.api;

/** Inference or training: only training draws noise (jitter, noisy-top-k noise, GShard random second expert). */
public enum Mode {
    /** No noise of any kind; the same input always gives the same routing. */
    INFERENCE,
    /** Noise is drawn from the seed and step of {@link ForwardOptions}, or taken from the caller. */
    TRAINING
}

package io.github.moe4j.api;

/**
 * Gradients of \( L = \sum dY \odot y + \) the weighted losses (SPEC §10), one per input and
 * parameter, in the layout of {@link MoeWeights}. A component that is absent from the weights or
 * belongs to a frozen group ({@link Freeze}) is {@code null}.
 *
 * @param input       dL/dx, [T, d]
 * @param router      dL/dW_r, [d, E]
 * @param routerBias  dL/db_r, [E]
 * @param noiseRouter dL/dW_noise, [d, E]
 * @param wIn         dL/dW_in, [E, d, h]
 * @param wGate       dL/dW_gate, [E, d, h]
 * @param wOut        dL/dW_out, [E, h, d]
 * @param bIn         dL/db_in, [E, h]
 * @param bOut        dL/db_out, [E, d]
 */
public record MoeGradients(Tensor input, Tensor router, Tensor routerBias, Tensor noiseRouter, Tensor wIn,
                           Tensor wGate, Tensor wOut, Tensor bIn, Tensor bOut) {
}

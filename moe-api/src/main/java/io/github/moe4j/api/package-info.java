/**
 * The backend-neutral API of moe4j: configurations, tensors, weights, results, the backend SPI
 * and seeded noise.
 *
 * <p>What lives here: immutable, validated descriptions of a sparse Mixture-of-Experts layer
 * ({@link io.github.moe4j.api.MoeConfig} and its parts, {@link io.github.moe4j.api.Presets}),
 * the data that crosses the API ({@link io.github.moe4j.api.Tensor},
 * {@link io.github.moe4j.api.MoeWeights}, {@link io.github.moe4j.api.Routing},
 * {@link io.github.moe4j.api.MoeLosses}, {@link io.github.moe4j.api.MoeGradients}), the
 * service-provider interface a backend implements ({@link io.github.moe4j.api.MoeBackendProvider},
 * {@link io.github.moe4j.api.MoeBackend}, {@link io.github.moe4j.api.MoeLayer}) and its discovery
 * ({@link io.github.moe4j.api.MoeBackends}), and the one place random numbers are made
 * ({@link io.github.moe4j.api.Noise}).
 *
 * <p>What does not: any arithmetic of the layer itself. That is in the reference
 * ({@code io.github.moe4j.reference}) and in the backends. This package depends on Commons RNG
 * and on nothing that touches a device.
 *
 * <p>Shapes are written {@code [T, d]} (tokens by model dim), {@code [E, d, h]} and so on;
 * every array is row-major, last index fastest.
 */
package io.github.moe4j.api;

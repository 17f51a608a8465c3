/**
 * The conformance suite that certifies any {@link io.github.moe4j.api.MoeBackend} against the
 * reference (DESIGN "The conformance suite", SPEC §11–§12, STYLE §18–§22).
 *
 * <p>A backend author implements {@link io.github.moe4j.conformance.MoeBackendContract} in one
 * small test class (see {@code CERTIFY.md} in this module). The contract is the union of
 * {@link io.github.moe4j.conformance.RoutingContract}, {@link io.github.moe4j.conformance.ForwardContract},
 * {@link io.github.moe4j.conformance.BackwardContract}, {@link io.github.moe4j.conformance.InvariantsContract},
 * {@link io.github.moe4j.conformance.RobustnessContract} and {@link io.github.moe4j.conformance.GoldenContract}:
 * jqwik properties over the generators of {@link io.github.moe4j.conformance.MoeCases}, compared by
 * {@link io.github.moe4j.conformance.Compare} within the bounds of
 * {@link io.github.moe4j.conformance.Tolerances}, with the results tallied by
 * {@link io.github.moe4j.conformance.Coverage} and printed after the run.
 *
 * <p>The code is in {@code src/main/java} and ships as an ordinary jar, which backends add with
 * {@code <scope>test</scope>}; the golden cases ship in it as resources.
 */
package io.github.moe4j.conformance;

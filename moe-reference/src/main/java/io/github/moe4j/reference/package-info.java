/**
 * The scalar reference implementation of moe4j: the correctness oracle every backend is checked
 * against.
 *
 * <p>It reads like the papers: one class per concept ({@link io.github.moe4j.reference.Softmax},
 * {@link io.github.moe4j.reference.TopK}, {@link io.github.moe4j.reference.TokenChoiceRouter},
 * {@link io.github.moe4j.reference.NoisyTopKRouter},
 * {@link io.github.moe4j.reference.ExpertChoiceRouter},
 * {@link io.github.moe4j.reference.CapacityAssigner},
 * {@link io.github.moe4j.reference.ExpertNetwork}, the losses), each with its equation and
 * citation, composed by {@link io.github.moe4j.reference.ReferenceLayer}, whose backward, the
 * stages in reverse, is in {@code ReferenceBackward}. Everything is computed
 * in {@code double} with plain loops, in a fixed order (SPEC §1): sums over tokens in increasing
 * token index, over experts in increasing expert index, over ranks in rank order. Only the float32
 * API results are rounded.
 *
 * <p>What does not live here: anything fast. The reference never calls a fast path.
 *
 * <p>Shape legend used throughout: T = tokens, d = model dim, h = expert hidden dim,
 * E = experts, k = experts per token, C = capacity per expert and group, G = groups.
 */
package io.github.moe4j.reference;

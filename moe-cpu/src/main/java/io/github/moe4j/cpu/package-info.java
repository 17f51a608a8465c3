/**
 * The fast CPU backend: float32 experts on a fixed thread pool, index dispatch (tokens grouped by
 * expert, no dense [T, E, C] tensors), expert GEMMs through dev.ludovic.netlib BLAS (JNI to the
 * system OpenBLAS, else the Vector API or plain Java, said in {@code device()}), and a
 * deterministic gather-combine. The router's logits are SGEMMs too; its routing math and losses
 * run in double on those logits. Register it by putting this jar on the class path; its
 * provider's name is {@code "cpu"}.
 */
package io.github.moe4j.cpu;

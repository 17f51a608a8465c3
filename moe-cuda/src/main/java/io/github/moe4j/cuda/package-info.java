/**
 * The CUDA backend ({@code "cuda"}): routing, dispatch, activation, combine and loss kernels written
 * once in a portable C dialect ({@code kernels/*.cu} in this package's resources, with the header
 * {@code moe_portable.h}), shipped as PTX for {@code compute_75} and loaded through the JCuda driver
 * API; expert GEMMs through cuBLAS (JCublas2), or moe4j's own tiled GEMM kernel where cuBLAS is
 * missing.
 *
 * <p>The orchestration ({@link io.github.moe4j.cuda.CudaBackend} and its layer) talks only to a small
 * device-runtime interface (allocate, copy, launch a kernel by name, GEMM, free). Users get the JCuda
 * implementation; the module's tests run the very same kernel sources and orchestration on an
 * OpenCL device (PoCL in CI) through a JOCL implementation of that interface, and compare with
 * {@code io.github.moe4j.reference.ReferenceLayer}.
 *
 * <p>What is here: forward of token-choice top-k routing (every gate normalisation and timing,
 * every capacity mode and priority, groups, padding, jitter, GShard's random second expert), every
 * activation, optional biases, the aux and z losses. What is not yet: backward, noisy top-k and
 * expert-choice routing; {@link io.github.moe4j.cuda.CudaBackend#supports} and
 * {@code backward} say so.
 */
package io.github.moe4j.cuda;

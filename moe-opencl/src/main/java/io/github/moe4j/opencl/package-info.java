/**
 * The OpenCL backend: {@link io.github.moe4j.opencl.OpenClBackendProvider} (name {@code "opencl"})
 * opens an {@link io.github.moe4j.opencl.OpenClBackend}, whose layers run as Aparapi kernels
 * written in Java on an OpenCL device (a GPU, or PoCL on the CPU). Kernels live here as
 * package-private {@code Kernel} subclasses, each naming the reference method it mirrors; nothing
 * here falls back to Java threads silently.
 */
package io.github.moe4j.opencl;

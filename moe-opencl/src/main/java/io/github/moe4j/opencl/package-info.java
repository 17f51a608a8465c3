/**
 * The OpenCL backend on Aparapi. Not implemented yet (moe4j issue 5): this module builds and holds
 * no provider, so it adds no backend to the class path.
 */
package io.github.moe4j.opencl;

/**
 * The CUDA backend on JCuda and JCublas. Not implemented yet (moe4j issue 6): this module builds and
 * holds no provider, so it adds no backend to the class path.
 */
package io.github.moe4j.cuda;

/*
 * moe_portable.h: the one header that lets every moe4j kernel file compile as CUDA C (nvcc -ptx)
 * and as OpenCL C 1.2 (prepended by the Java side in place of the #include line, since resources
 * in a jar have no include path). Kernel files use only what this header defines plus plain C:
 * no C++, no warp intrinsics, no float atomics, sizes as int, offsets computed in size_t.
 *
 * Mirrors: research java-gpu.md section 4 (a header that compiled with nvcc and ran on PoCL).
 */
#ifndef MOE_PORTABLE_H
#define MOE_PORTABLE_H

#if defined(__CUDACC__)
  #define KERNEL extern "C" __global__
  #define GLOBAL
  #define LOCAL_MEM __shared__
  #define RESTRICT __restrict__
  #define DEVICE_FN static __device__ __forceinline__
  #define GID0 ((int)(blockIdx.x * blockDim.x + threadIdx.x))
  #define GID1 ((int)(blockIdx.y * blockDim.y + threadIdx.y))
  #define LID0 ((int)threadIdx.x)
  #define LID1 ((int)threadIdx.y)
  #define LOCAL_BARRIER() __syncthreads()
  #define ATOMIC_MIN_INT(p, v) atomicMin((p), (v))
  #define IS_FINITE(x) isfinite(x)
#elif defined(__OPENCL_VERSION__)
  #define KERNEL __kernel
  #define GLOBAL __global
  #define LOCAL_MEM __local
  #define RESTRICT restrict
  #define DEVICE_FN static inline
  #define GID0 ((int)get_global_id(0))
  #define GID1 ((int)get_global_id(1))
  #define LID0 ((int)get_local_id(0))
  #define LID1 ((int)get_local_id(1))
  #define LOCAL_BARRIER() barrier(CLK_LOCAL_MEM_FENCE)
  #define ATOMIC_MIN_INT(p, v) atomic_min((p), (v))
  #define IS_FINITE(x) isfinite(x)
  #define expf(x) exp(x)
  #define logf(x) log(x)
  #define log1pf(x) log1p(x)
  #define sqrtf(x) sqrt(x)
  #define tanhf(x) tanh(x)
  #define erff(x) erf(x)
  #define erfcf(x) erfc(x)
  #define fmaxf(a, b) fmax((a), (b))
  #define fabsf(x) fabs(x)
#else
  #error "compile with nvcc or as OpenCL C"
#endif

/* The most negative finite float: a start value for a running maximum (no INFINITY in the dialect). */
#define NEG_HUGE (-3.402823466e38f)
/* Integer.MAX_VALUE: the "no non-finite logit seen" value of the status word. */
#define MOE_INT_MAX 2147483647

#endif

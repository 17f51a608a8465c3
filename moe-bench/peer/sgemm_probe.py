#!/usr/bin/python3
"""The machine's single-precision GEMM rate through numpy and the system BLAS: the yardstick
run-bench.sh divides every throughput by.

Usage: /usr/bin/python3 sgemm_probe.py [--size 1024] [--threads 1,2] [--reps 7]

Prints one JSON line per thread count: {"bench": "sgemm_probe", "n": n, "threads": t,
"gflops_median": ..., "gflops_min": ..., "gflops_max": ..., "blas": ...}, FLOPs = 2 n^3 per call.
Thread counts are switched inside one process with openblas_set_num_threads (OpenBLAS keeps its
own pool), so the 1- and 2-thread rates are measured back to back.
"""
import argparse
import ctypes
import json
import os
import statistics
import time

import numpy as np


def openblas():
    """The OpenBLAS numpy loaded through libblas.so.3, or None (netlib BLAS, MKL, ...)."""
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib
    except OSError:
        return None


def blas_libs():
    libs = set()
    for line in open("/proc/self/maps"):
        p = line.split()[-1]
        if "blas" in p or "mkl" in p or "blis" in p:
            libs.add(os.path.basename(os.path.dirname(p)) + "/" + os.path.basename(p))
    return sorted(libs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    n = args.size
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)
    lib = openblas()
    for t in (int(s) for s in args.threads.split(",")):
        if lib is not None:
            lib.openblas_set_num_threads(t)
        for _ in range(2):
            np.matmul(a, b, out=c)
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            np.matmul(a, b, out=c)
            times.append(time.perf_counter() - t0)
        flop = 2.0 * n ** 3
        print(json.dumps({
            "bench": "sgemm_probe", "n": n, "threads": t, "reps": args.reps,
            "gflops_median": round(flop / statistics.median(times) / 1e9, 2),
            "gflops_min": round(flop / max(times) / 1e9, 2), "gflops_max": round(flop / min(times) / 1e9, 2),
            "numpy": np.__version__,
            "blas": lib.openblas_get_corename().decode() if lib is not None else None,
            "blas_threads": lib.openblas_get_num_threads() if lib is not None else None,
            "libs_loaded": blas_libs()}), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Regenerates the PTX that moe-cuda ships, from the kernel sources next to it:
#   src/main/resources/io/github/moe4j/cuda/kernels/*.cu  ->  *.ptx (same folder, committed)
#
# Usage: moe-cuda/scripts/build-ptx.sh [OUTPUT_DIR]   (default: the kernels folder itself)
#
# - Target: virtual architecture compute_75 (Turing). The driver JIT-compiles it for the GPU it
#   finds (sm_75 and newer) and caches the result.
# - nvcc 13 writes PTX ISA ".version 9.0", which CUDA 12.x drivers reject
#   ("Unsupported .version 9.0; current version is '8.0'"). The kernels use nothing newer than
#   ISA 8.0, so the header line is lowered to ".version 8.0", the ISA of CUDA 12.0. A CUDA 12.x
#   nvcc already writes <= 8.x and is left alone. PtxResourcesTest compiles every shipped file
#   with the nvPTXCompiler 12.0 inside jcuda-natives for sm_75, sm_80 and sm_90, which catches an
#   instruction newer than ISA 8.0; PtxUpToDateTest reruns this script and diffs the output.
# - No fast-math flags: expf/logf/erff/tanhf keep CUDA's documented accuracy (a few ulp).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kernels="$here/../src/main/resources/io/github/moe4j/cuda/kernels"
out="${1:-$kernels}"
mkdir -p "$out"

NVCC="${NVCC:-nvcc}"
if ! command -v "$NVCC" >/dev/null 2>&1; then
  echo "build-ptx.sh: nvcc not found (set NVCC or put the CUDA toolkit on PATH)" >&2
  exit 2
fi

for src in "$kernels"/*.cu; do
  name="$(basename "$src" .cu)"
  "$NVCC" -ptx -arch=compute_75 -I "$kernels" -o "$out/$name.ptx" "$src"
  # Lower the PTX ISA version to 8.0 (CUDA 12.0) when nvcc wrote a newer one.
  sed -i -E 's/^\.version (9|[1-9][0-9])\.[0-9]+$/.version 8.0/; s/^\.version 8\.[1-9]$/.version 8.0/' "$out/$name.ptx"
  echo "build-ptx.sh: $out/$name.ptx ($(grep -m1 '^\.version' "$out/$name.ptx"))"
done

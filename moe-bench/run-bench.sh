#!/usr/bin/env bash
# moe4j benchmark run: the JMH suite (moe-bench/target/benchmarks.jar) for the selected backends and
# configurations, the PyTorch peer (peer/peer_torch_moe.py) for the same configurations and modes
# with 1 and 2 threads (2 threads with OMP_WAIT_POLICY=PASSIVE; PEER_VARIANTS="1: 2:PASSIVE 2:" adds
# the default spinning policy, and the fastest 2-thread variant counts), and the machine's SGEMM rate (peer/sgemm_probe.py), all in one run; then
# summarize.py prints the table and writes results.json, summary.md and chart.png into the
# results folder. moe4j and the peer run configuration by configuration, back to back.
#
# Usage (from anywhere):
#   moe-bench/run-bench.sh [--backends reference,opencl,cpu] [--configs S,W,Switch,M,L] [--modes fwd,fwdbwd]
#                          [--cpu-threads 1,2]
#                          [--peer-configs S,W,Switch,M,L] [--exclude backend:config[:mode],...]
#                          [--heavy-gflop 4] [--rounds 1] [--no-stages] [--no-scaling] [--quick] [--skip-build] [--out DIR]
#
#   --backends      backend names (ServiceLoader providers); one that is missing, unavailable or
#                   does not support a case is skipped with its reason (BenchPlan)
#   --configs       configurations for moe4j (S, M, L, W, Switch; see BenchConfigs)
#   --cpu-threads   pool sizes to measure the cpu backend with (JMH parameter "threads"); each is
#                   compared with the peer at the same number of threads. Every JMH fork runs with
#                   OPENBLAS_NUM_THREADS=1: the cpu backend runs one single-threaded GEMM per pool thread
#   --peer-configs  configurations for the peer (default: --configs plus L)
#   --exclude       cases not to run, e.g. opencl:W:fwdbwd or reference:L (all modes); the default
#                   keeps a full run under 40 minutes on a 2-core machine
#   --heavy-gflop   a case of a slow backend (reference, opencl) whose expert GFLOP per call exceeds this
#                   is measured with one call (single
#                   shot; no warm-up for the reference, one untimed call first for other backends, which
#                   compile kernels on their first call), as the reference and OpenCL take tens of
#                   seconds per call there; lighter
#                   cases get 2 warm-up and 3 measured iterations of at least 4 s (one warm-up left
#                   the heap still growing: the W forward+backward outlier of 2026-11-23 20:01)
#   --rounds        run the config-by-config sequence (moe4j cases, then the peer) this many times;
#                   summarize.py reports the median of the rounds' moe4j / peer ratios, each ratio
#                   between figures taken minutes apart (the stages, scaling and memory run once)
#   --no-stages     skip the per-stage benchmarks: ReferenceStagesBenchmark (when the reference is in
#                   --backends), CpuStagesBenchmark on S, M, W and Switch (when cpu is) and OpenClStagesBenchmark on
#                   S and Switch (when opencl is)
#   --quick         a check of the whole pipeline in about 3 minutes: tiny JMH iterations, S only,
#                   few peer repetitions (its numbers mean nothing)
#   --out           results folder (default moe-bench/results/<UTC date>)
#   PEER_VARIANTS   peer thread settings, "threads:OMP_WAIT_POLICY" (default "1: 2:PASSIVE")
#   JMH_EXTRA       extra JMH options for every JMH call (e.g. "-jvmArgsAppend -XX:+UseParallelGC")
#   CPU_JVM         the JVM options of the cpu backend's JMH forks (default: a fixed heap of 4 GB, touched
#                   at start: "-Xms4g -Xmx4g -XX:+AlwaysPreTouch --add-modules jdk.incubator.vector").
#                   With the annotations' growing heap (-Xms2g -Xmx12g), G1 enlarged the heap during the
#                   measurement, and while the allocations went through memory never touched before,
#                   S's forward took 16.4 ms instead of 13.0 (page faults under KVM); a fixed, touched
#                   heap is what a tuned long-running JVM has, and JMH measures the steady state
#
# Needs: JDK 17, /usr/bin/python3 with torch, numpy and matplotlib (Debian: python3-torch
# python3-numpy python3-matplotlib libopenblas0-pthread).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PY=/usr/bin/python3
JAR="$HERE/target/benchmarks.jar"

BACKENDS="reference,opencl,cpu"
CONFIGS="S,W,Switch,M,L"
CPU_THREADS="1,2"
MODES="fwd,fwdbwd"
PEER_CONFIGS=""
EXCLUDE="reference:L:fwdbwd,opencl:L,opencl:W:fwdbwd"
HEAVY_GFLOP=4
ROUNDS=1
CPU_JVM="${CPU_JVM:--Xms4g -Xmx4g -XX:+AlwaysPreTouch --add-modules jdk.incubator.vector}"
SLOW_BACKENDS="reference,opencl"   # seconds per call: --heavy-gflop applies to them only
STAGES=1
SCALING=1
QUICK=0
BUILD=1
OUT=""

while [[ $# -gt 0 ]]; do
  case "$1" in
    --backends) BACKENDS="$2"; shift 2 ;;
    --configs) CONFIGS="$2"; shift 2 ;;
    --modes) MODES="$2"; shift 2 ;;
    --cpu-threads) CPU_THREADS="$2"; shift 2 ;;
    --peer-configs) PEER_CONFIGS="$2"; shift 2 ;;
    --exclude) EXCLUDE="$2"; shift 2 ;;
    --heavy-gflop) HEAVY_GFLOP="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --no-stages) STAGES=0; shift ;;
    --no-scaling) SCALING=0; shift ;;
    --quick) QUICK=1; shift ;;
    --skip-build) BUILD=0; shift ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "--rounds $ROUNDS: expected a positive integer" >&2; exit 2; }
if [[ $QUICK == 1 ]]; then
  CONFIGS="S"; PEER_CONFIGS="${PEER_CONFIGS:-S,Switch}"
fi
if [[ -z "$PEER_CONFIGS" ]]; then
  PEER_CONFIGS="$CONFIGS"; [[ ",$CONFIGS," == *",L,"* ]] || PEER_CONFIGS="$CONFIGS,L"
fi
OUT="${OUT:-$HERE/results/$(date -u +%F)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
LOG="$OUT/run.log"
: > "$LOG"
say() { echo "[$(date -u +%T)] $*" | tee -a "$LOG"; }

if [[ $BUILD == 1 ]]; then
  say "building moe-bench/target/benchmarks.jar"
  (cd "$ROOT" && ./mvnw -q -B -pl moe-bench -am package -DskipTests) >>"$LOG" 2>&1
fi
[[ -f "$JAR" ]] || { echo "no $JAR: build with ./mvnw -pl moe-bench -am package -DskipTests" >&2; exit 1; }
# run a private copy, so that a rebuild during the run cannot pull classes from under the forks
RUNJAR="$(mktemp --suffix=.jar)"
trap 'rm -f "$RUNJAR"' EXIT
cp "$JAR" "$RUNJAR"
JAR="$RUNJAR"

# ---------------------------------------------------------------- machine
{
  echo "{"
  echo "\"date_utc\": \"$(date -u +%FT%TZ)\","
  echo "\"cpu_model\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\","
  echo "\"cores\": $(nproc),"
  echo "\"mem_gib\": $(awk '/MemTotal/ {printf "%.1f", $2/1048576}' /proc/meminfo),"
  echo "\"kernel\": \"$(uname -r)\","
  echo "\"jdk\": \"$(java -version 2>&1 | head -2 | tail -1 | sed 's/"/\\"/g')\","
  echo "\"cpu_jvm\": \"$CPU_JVM\","
  echo "\"loadavg_start\": \"$(cut -d' ' -f1-3 /proc/loadavg)\","
  echo "\"options\": \"backends=$BACKENDS configs=$CONFIGS modes=$MODES peer=$PEER_CONFIGS exclude=$EXCLUDE heavy_gflop=$HEAVY_GFLOP rounds=$ROUNDS quick=$QUICK\""
  echo "}"
} > "$OUT/machine.json"

# ---------------------------------------------------------------- SGEMM probe (start)
say "SGEMM probe (numpy, 1024^3, 1 and 2 threads)"
$PY "$HERE/peer/sgemm_probe.py" --reps $([[ $QUICK == 1 ]] && echo 3 || echo 7) | sed 's/^{/{"when": "start", /' > "$OUT/sgemm.jsonl"
cat "$OUT/sgemm.jsonl" >>"$LOG"

# ---------------------------------------------------------------- plan
say "plan: which cases run here"
ALLCFG="$CONFIGS"
[[ $SCALING == 1 ]] && ALLCFG="$ALLCFG,E8,E64,E8-T2048,E64-T2048"
java --add-modules jdk.incubator.vector -cp "$JAR" io.github.moe4j.bench.BenchPlan "$BACKENDS" "$ALLCFG" "$MODES" > "$OUT/plan.jsonl" 2> >(grep -v '^WARNING: Aparapi' | tee -a "$LOG" >&2)

excluded() {  # backend config mode
  local IFS=','; local e
  for e in $EXCLUDE; do
    [[ "$e" == "$1:$2" || "$e" == "$1:$2:$3" ]] && return 0
  done
  return 1
}
plan_field() {  # config field
  $PY -c "import json,sys
for l in open(sys.argv[1]):
    r=json.loads(l)
    if r['kind']=='config' and r['config']==sys.argv[2]: print(r[sys.argv[3]])" "$OUT/plan.jsonl" "$1" "$2"
}
runs() {  # backend config mode -> exit 0 if the plan says it runs
  grep -q "\"kind\":\"case\",\"backend\":\"$1\",\"config\":\"$2\",\"mode\":\"$3\",\"run\":true" "$OUT/plan.jsonl"
}

jmh() {  # name, then JMH arguments
  local name="$1"; shift
  say "JMH $name: $*"
  if ! OPENBLAS_NUM_THREADS=1 java -Djmh.ignoreLock=true -jar "$JAR" "$@" ${JMH_EXTRA:-} -rf json -rff "$OUT/jmh-$name.json" >"$OUT/jmh-$name.log" 2>&1; then
    say "  FAILED (see jmh-$name.log)"; tail -5 "$OUT/jmh-$name.log" | tee -a "$LOG"
    return 0
  fi
  grep -E '^(LayerBenchmark|ReferenceStagesBenchmark|CpuStagesBenchmark|OpenClStagesBenchmark)' "$OUT/jmh-$name.log" | tee -a "$LOG" || true
}

if [[ $QUICK == 1 ]]; then
  LIGHT=(-bm avgt -wi 0 -i 1 -r 1 -f 1); HEAVY=(-bm avgt -wi 0 -i 1 -r 1 -f 1)
  STAGE_OPTS=(-wi 0 -i 1 -r 1 -f 1)
else
  LIGHT=(-bm avgt -wi 2 -w 4 -i 3 -r 4 -f 1); HEAVY=(-bm ss -i 1 -f 1)
  STAGE_OPTS=(-wi 1 -w 1 -i 3 -r 1 -f 1)
fi

# ---------------------------------------------------------------- JMH: whole layer
IFS=',' read -ra BL <<<"$BACKENDS"; IFS=',' read -ra CL <<<"$CONFIGS"; IFS=',' read -ra ML <<<"$MODES"
layer_jmh() {  # config: every backend and mode on it
  local c="$1" b m gf method opts threads
  for b in "${BL[@]}"; do
    for m in "${ML[@]}"; do
      if ! runs "$b" "$c" "$m"; then continue; fi          # BenchPlan printed the reason
      if excluded "$b" "$c" "$m"; then
        say "SKIP $b $c $m: excluded (--exclude $EXCLUDE) to keep the run under 40 minutes"
        [[ $ROUND == 1 ]] && echo "{\"kind\":\"case\",\"backend\":\"$b\",\"config\":\"$c\",\"mode\":\"$m\",\"run\":false,\"reason\":\"excluded from this run (--exclude)\"}" >> "$OUT/plan.jsonl"
        continue
      fi
      gf=$(plan_field "$c" "${m}_gflop")
      method=$([[ $m == fwd ]] && echo forward || echo forwardBackward)
      if [[ ",$SLOW_BACKENDS," == *",$b,"* ]] && $PY -c "import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)" "$gf" "$HEAVY_GFLOP"; then
        opts=("${HEAVY[@]}")
        # a device backend compiles its kernels on the first call: give it one untimed call first
        if [[ $QUICK == 0 && $b != reference ]]; then opts+=(-wi 1); elif [[ $QUICK == 0 ]]; then opts+=(-wi 0); fi
      else
        opts=("${LIGHT[@]}")
      fi
      threads=0; [[ $b == cpu ]] && threads="$CPU_THREADS" && opts+=(-jvmArgsAppend "$CPU_JVM")
      jmh "layer-$b-$c-$m$ROUND_SUFFIX" "io.github.moe4j.bench.LayerBenchmark.${method}\$" -p backend="$b" -p config="$c" -p threads="$threads" "${opts[@]}"
    done
  done
}

# ---------------------------------------------------------------- PyTorch peer
: > "$OUT/peer.jsonl"
peer_reps() {  # config -> "reps warmup"
  if [[ $QUICK == 1 ]]; then echo "2 1"; return; fi
  case "$1" in S) echo "10 2" ;; L) echo "3 1" ;; *) echo "5 1" ;; esac
}
peer() {  # config: the peer in every mode and thread variant on it
  local c="$1" m tp t pol disp reps warm line
  local dispatches=("einsum"); [[ $c == Switch ]] && dispatches=("einsum" "index")
  for m in "${ML[@]}"; do
    for tp in ${PEER_VARIANTS:-1: 2:PASSIVE}; do
      t="${tp%%:*}"; pol="${tp#*:}"
      for disp in "${dispatches[@]}"; do
        read -r reps warm <<<"$(peer_reps "$c")"
        if line=$(env ${pol:+OMP_WAIT_POLICY=$pol} $PY "$HERE/peer/peer_torch_moe.py" "$c" "$t" "$m" --reps "$reps" --warmup "$warm" --dispatch "$disp" 2>>"$LOG" | grep '^{'); then
          echo "$line" | sed "s/^{/{\"round\": $ROUND, /" >> "$OUT/peer.jsonl"
          say "  peer $c $m ${t}T ${pol:-default} $disp: $(echo "$line" | $PY -c 'import json,sys; r=json.loads(sys.stdin.read()); print(r["ms_median"], "ms,", r["tokens_per_s_median"], "tokens/s")')"
        else
          say "  peer $c $m ${t}T ${pol:-default} $disp FAILED (see run.log)"
        fi
      done
    done
  done
}

# ---------------------------------------------------------------- moe4j and the peer, config by config
# The machine is shared and its speed drifts over a run: each configuration's moe4j cases and peer
# run back to back, so that the two figures a ratio divides were taken minutes apart, not half an hour.
say "moe4j configs $CONFIGS and PyTorch peer configs $PEER_CONFIGS (modes $MODES, peer variants threads:OMP_WAIT_POLICY ${PEER_VARIANTS:-1: 2:PASSIVE}), config by config"
IFS=',' read -ra PL <<<"$PEER_CONFIGS"
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  ROUND_SUFFIX=""
  if [[ $ROUNDS -gt 1 ]]; then ROUND_SUFFIX="-r$ROUND"; say "round $ROUND of $ROUNDS"; fi
  DONE_CONFIGS=""
  for c in "${CL[@]}" "${PL[@]}"; do
    [[ " $DONE_CONFIGS " == *" $c "* ]] && continue
    DONE_CONFIGS="$DONE_CONFIGS $c"
    [[ ",$CONFIGS," == *",$c,"* ]] && layer_jmh "$c"
    [[ ",$PEER_CONFIGS," == *",$c,"* ]] && peer "$c"
  done
done

# ---------------------------------------------------------------- JMH: E = 64 vs E = 8, reference, at T = 512 and 2048
if [[ $SCALING == 1 ]]; then
  jmh "scaling" 'io.github.moe4j.bench.LayerBenchmark' -p backend=reference -p config=E8,E64,E8-T2048,E64-T2048 -p threads=0 "${LIGHT[@]}"
fi

# ---------------------------------------------------------------- JMH: stages of the reference and of the cpu backend
if [[ $STAGES == 1 && ",$BACKENDS," == *",reference,"* ]]; then
  jmh "stages" 'io.github.moe4j.bench.ReferenceStagesBenchmark' -p config=$([[ $QUICK == 1 ]] && echo E8 || echo S,E8,E64) "${STAGE_OPTS[@]}"
  jmh "looporder" 'io.github.moe4j.bench.ExpertLoopOrderBenchmark' "${STAGE_OPTS[@]}"
fi
if [[ $STAGES == 1 && ",$BACKENDS," == *",cpu,"* ]]; then
  jmh "cpu-stages" 'io.github.moe4j.bench.CpuStagesBenchmark' -p config=$([[ $QUICK == 1 ]] && echo S || echo S,M,W,Switch) -p threads="$CPU_THREADS" "${STAGE_OPTS[@]}" -jvmArgsAppend "$CPU_JVM"
fi
if [[ $STAGES == 1 && ",$BACKENDS," == *",opencl,"* ]]; then
  jmh "opencl-stages" 'io.github.moe4j.bench.OpenClStagesBenchmark' -p config=$([[ $QUICK == 1 ]] && echo S || echo S,Switch) "${STAGE_OPTS[@]}"
fi

# ---------------------------------------------------------------- memory of the cpu backend
: > "$OUT/memory.jsonl"
if [[ ",$BACKENDS," == *",cpu,"* ]]; then
  say "memory: MemoryFootprint of the cpu backend, configs $CONFIGS"
  for c in "${CL[@]}"; do
    for m in "${ML[@]}"; do
      if line=$(OPENBLAS_NUM_THREADS=1 java -Xmx12g --add-modules jdk.incubator.vector -cp "$JAR" io.github.moe4j.bench.MemoryFootprint cpu "$c" "$m" 2>>"$LOG" | grep '^{'); then
        echo "$line" >> "$OUT/memory.jsonl"
      else
        say "  memory cpu $c $m FAILED (see run.log)"
      fi
    done
  done
fi

# ---------------------------------------------------------------- SGEMM probe (end) and summary
say "SGEMM probe again (the machine is shared: the two probes bracket the run)"
$PY "$HERE/peer/sgemm_probe.py" --reps $([[ $QUICK == 1 ]] && echo 3 || echo 7) | sed 's/^{/{"when": "end", /' >> "$OUT/sgemm.jsonl"
$PY - "$OUT/machine.json" <<'PYEOF'
import json, sys
p = sys.argv[1]; m = json.load(open(p)); m["loadavg_end"] = " ".join(open("/proc/loadavg").read().split()[:3])
json.dump(m, open(p, "w"), indent=1)
PYEOF
say "summary"
$PY "$HERE/summarize.py" "$OUT" | tee -a "$LOG"
say "done: $OUT"

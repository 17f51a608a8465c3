#!/usr/bin/python3
"""Summarises one run-bench.sh results folder: prints a markdown report and writes
results.json, summary.md and chart.png next to the inputs.

Usage: /usr/bin/python3 summarize.py RESULTS_DIR

Inputs (all written by run-bench.sh in the same run): machine.json, plan.jsonl (BenchPlan: sizes,
kept assignments, expert GFLOP per call, skipped cases), jmh-*.json (JMH -rf json), peer.jsonl
(peer_torch_moe.py), sgemm.jsonl (sgemm_probe.py, at the start and the end of the run).

Every ratio is between figures of this one folder. FLOPs come from plan.jsonl, i.e. from
BenchConfigs.forwardFlops in Java (expert GEMMs over kept assignments, forward+backward = 3x);
the peer counts the same formula over all T*k assignments (equal when nothing is dropped).
Only the standard library and matplotlib are used.
"""
import glob
import json
import os
import re
import statistics
import sys

MODES = {"fwd": "forward", "fwdbwd": "forward+backward"}


def jsonl(path):
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.strip().startswith("{")]


def load_jmh(folder):
    """Every JMH result of the folder, each with "round": N from a file name ending in -rN.json (run-bench.sh --rounds), else 1."""
    out = []
    for p in sorted(glob.glob(os.path.join(folder, "jmh-*.json"))):
        m = re.search(r"-r(\d+)\.json$", p)
        try:
            out.extend(dict(e, round=int(m.group(1)) if m else 1) for e in json.load(open(p)))
        except ValueError:
            pass
    return out


def ms_per_op(entry):
    pm = entry["primaryMetric"]
    unit = pm["scoreUnit"]
    scale = {"ms/op": 1.0, "s/op": 1e3, "us/op": 1e-3, "ns/op": 1e-6}[unit]
    raw = [v * scale for fork in pm.get("rawData", []) for v in fork]
    return pm["score"] * scale, raw


def round_list(ratios):
    """ " (r1, r2, ...)" when there were several rounds, else nothing."""
    return " (" + ", ".join(f"{x:.2f}" for x in ratios) + ")" if len(ratios) > 1 else ""


def by_case(per_round):
    """{(a, b, c, round): figures} -> {(a, b, c): [figures of each round, in round order]}."""
    out = {}
    for key in sorted(per_round):
        out.setdefault(key[:3], []).append(per_round[key])
    return out


def fmt(v, nd=1):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.{nd}f}" if abs(v) >= 1 else f"{v:.{max(nd, 3)}f}"


def main():
    folder = sys.argv[1]
    machine = json.load(open(os.path.join(folder, "machine.json")))
    plan = jsonl(os.path.join(folder, "plan.jsonl"))
    cfg = {r["config"]: r for r in plan if r["kind"] == "config"}
    skipped = [r for r in plan if r["kind"] == "case" and not r["run"]]
    jmh = load_jmh(folder)
    peer = jsonl(os.path.join(folder, "peer.jsonl"))
    sgemm = jsonl(os.path.join(folder, "sgemm.jsonl"))
    memory = jsonl(os.path.join(folder, "memory.jsonl"))

    sg = {}
    for t in (1, 2):
        vals = [r["gflops_median"] for r in sgemm if r["threads"] == t]
        sg[t] = statistics.mean(vals) if vals else None
    blas = next((r.get("blas") for r in sgemm), None)

    # moe4j whole-layer results (scaling pairs E8/E64 reported separately). Each is compared with the
    # peer and the SGEMM probe at the same number of threads: the reference runs on one thread, PoCL
    # uses every core, the cpu backend runs with the JMH parameter "threads" (0 = every core).
    cores = machine["cores"]
    moe = {}  # (config, mode, label, round) -> figures of that round
    for e in jmh:
        name = e["benchmark"].rsplit(".", 1)[-1]
        if ".LayerBenchmark." not in e["benchmark"]:
            continue
        mode = "fwd" if name == "forward" else "fwdbwd"
        c, b = e["params"]["config"], e["params"]["backend"]
        asked = int(e["params"].get("threads", "0"))
        threads = 1 if b == "reference" else (asked or cores)
        label = b if b in ("reference", "opencl") else f"{b} {threads}T"
        ms, raw = ms_per_op(e)
        gf = cfg[c][f"{mode}_gflop"]
        moe[(c, mode, label, e["round"])] = {"config": c, "mode": mode, "backend": b, "label": label, "threads": threads,
                                             "round": e["round"], "ms": ms, "calls_measured": len(raw), "ms_raw": raw,
                                             "jmh_mode": e["mode"], "tokens_per_s": cfg[c]["T"] / (ms / 1e3),
                                             "gflops": gf / (ms / 1e3), "expert_gflop_per_call": gf}

    # best peer figure per (config, mode, threads, round) over the dispatch variants
    best_peer_round = {}
    for r in peer:
        key = (r["config"], r["mode"], r["threads"], r.get("round", 1))
        if key not in best_peer_round or r["ms_median"] < best_peer_round[key]["ms_median"]:
            best_peer_round[key] = r

    # With several rounds (run-bench.sh --rounds), each round's moe4j figure is divided by the peer's of
    # the same round, minutes apart, and the ratio reported is the median of those ratios; the times
    # reported are the medians over the rounds.
    per_round_moe = moe
    moe = {}
    for key, rs in by_case(per_round_moe).items():
        ms = statistics.median(r["ms"] for r in rs)
        first = rs[0]
        moe[key] = {**first, "round": None, "rounds": len(rs), "ms": ms, "ms_rounds": [r["ms"] for r in rs],
                    "calls_measured": sum(r["calls_measured"] for r in rs), "ms_raw": [v for r in rs for v in r["ms_raw"]],
                    "tokens_per_s": cfg[first["config"]]["T"] / (ms / 1e3), "gflops": first["expert_gflop_per_call"] / (ms / 1e3)}
    best_peer = {}
    for key, rs in by_case(best_peer_round).items():
        best_peer[key] = {**rs[0], "rounds": len(rs),
                          **{f: statistics.median(r[f] for r in rs) for f in ("ms_median", "tokens_per_s_median", "gflops_median")}}

    def round_ratios(c, mode, label, t):
        """moe4j / peer in tokens/s, round by round, for the rounds that have both."""
        out = []
        for (c2, m2, l2, rnd), m in sorted(per_round_moe.items()):
            p = best_peer_round.get((c, mode, t, rnd))
            if (c2, m2, l2) == (c, mode, label) and p:
                out.append(m["tokens_per_s"] / p["tokens_per_s_median"])
        return out

    rows = []
    configs = [c for c in ["S", "M", "L", "W", "Switch"] if c in cfg or any(k[0] == c for k in best_peer)]
    backends = sorted({k[2] for k in moe})
    for c in configs:
        for mode in MODES:
            cands = [moe[(c, mode, b)] for b in backends if (c, mode, b) in moe]
            if not cands:
                cands = [None] if best_peer.get((c, mode, 1)) or best_peer.get((c, mode, 2)) else []
            for m in cands:
                t = m["threads"] if m else None
                p = best_peer.get((c, mode, t)) if m else None
                row = {"config": c, "mode": mode, "backend": m["label"] if m else None, "threads": t,
                       "moe4j_ms": m["ms"] if m else None, "moe4j_calls_measured": m["calls_measured"] if m else None,
                       "moe4j_tokens_per_s": m["tokens_per_s"] if m else None, "moe4j_gflops": m["gflops"] if m else None,
                       "peer1_tokens_per_s": (best_peer.get((c, mode, 1)) or {}).get("tokens_per_s_median"),
                       "peer2_tokens_per_s": (best_peer.get((c, mode, 2)) or {}).get("tokens_per_s_median"),
                       "peer_tokens_per_s": p["tokens_per_s_median"] if p else None,
                       "peer_dispatch": p["dispatch"] if p else None,
                       "peer_gflops": p["gflops_median"] if p else None}
                ratios = round_ratios(c, mode, m["label"], t) if m and p else []
                row["ratio_to_peer_rounds"] = ratios
                row["ratio_to_peer"] = statistics.median(ratios) if ratios else None
                row["ratio_to_sgemm"] = (m["gflops"] / sg[t]) if m and sg.get(t) else None
                row["peer_ratio_to_sgemm"] = (p["gflops_median"] / sg[t]) if p and sg.get(t) else None
                rows.append(row)

    # E = 64 vs E = 8 (reference) at T = 512 and at T = 2048, and the router's predicted share
    scaling = {}
    for suffix in ("", "-T2048"):
        e8, e64 = "E8" + suffix, "E64" + suffix
        for mode in MODES:
            if (e8, mode, "reference") in moe and (e64, mode, "reference") in moe:
                a, b = moe[(e8, mode, "reference")], moe[(e64, mode, "reference")]
                c8, c64 = cfg[e8], cfg[e64]
                f = 1 if mode == "fwd" else 3  # router backward: two more GEMMs of the same size, as for the experts
                pred = (c64[f"{mode}_gflop"] + f * c64["router_gflop"]) / (c8[f"{mode}_gflop"] + f * c8["router_gflop"])
                scaling[f"T{c8['T']}-{mode}"] = {
                    "T": c8["T"], "mode": mode, "E8_ms": a["ms"], "E64_ms": b["ms"], "E64_minus_E8_ms": b["ms"] - a["ms"],
                    "measured_ratio": b["ms"] / a["ms"], "predicted_ratio": pred,
                    "E8_ms_min": min(a["ms_raw"]), "E64_ms_min": min(b["ms_raw"]),
                    "measured_ratio_of_minima": min(b["ms_raw"]) / min(a["ms_raw"]),
                    "router_share_E8": c8["router_gflop"] / (c8["router_gflop"] + c8["fwd_gflop"]),
                    "router_share_E64": c64["router_gflop"] / (c64["router_gflop"] + c64["fwd_gflop"])}
    stages = {}
    cpu_stages = {}
    opencl_stages = {}
    loop_order = {}
    for e in jmh:
        if ".ExpertLoopOrderBenchmark." in e["benchmark"]:
            ms, _ = ms_per_op(e)
            p = e["params"]
            flop = 2.0 * int(p["rows"]) * int(p["d"]) * int(p["h"]) * 3
            loop_order[e["benchmark"].rsplit(".", 1)[-1]] = {"ms": ms, "gflops": flop / (ms / 1e3) / 1e9, **p}
        if ".ReferenceStagesBenchmark." in e["benchmark"]:
            ms, _ = ms_per_op(e)
            stages.setdefault(e["params"]["config"], {})[e["benchmark"].rsplit(".", 1)[-1]] = ms
        if ".CpuStagesBenchmark." in e["benchmark"]:
            ms, _ = ms_per_op(e)
            key = f"{e['params']['config']} {e['params']['threads']}T"
            cpu_stages.setdefault(key, {})[e["benchmark"].rsplit(".", 1)[-1]] = ms
        if ".OpenClStagesBenchmark." in e["benchmark"]:
            ms, _ = ms_per_op(e)
            opencl_stages.setdefault(e["params"]["config"], {})[e["benchmark"].rsplit(".", 1)[-1]] = ms

    # ---------------------------------------------------------------- report
    L = []
    L.append(f"Run of {machine['date_utc']} on {machine['cores']} cores, {machine['cpu_model']}, {machine.get('mem_gib')} GiB; "
             f"{machine['jdk']}; BLAS: OpenBLAS {blas} (numpy). Load average at start {machine.get('loadavg_start')}, "
             f"at end {machine.get('loadavg_end')}. The machine was shared with other jobs: figures are noisy."
             + (f" The cpu backend's JMH forks ran with `{machine['cpu_jvm']}`." if machine.get("cpu_jvm") else ""))
    L.append("")
    L.append(f"SGEMM probe (numpy 1024^3, median of 7, mean of the probes at the start and the end of the run): "
             f"1 thread {fmt(sg[1])} GFLOP/s, 2 threads {fmt(sg[2])} GFLOP/s "
             f"(start/end: {', '.join(str(r['threads']) + 'T ' + str(r['gflops_median']) for r in sgemm)}).")
    L.append("")
    L.append("Each moe4j figure is compared with the peer and the SGEMM probe at the same number of threads (T): "
             "the reference runs on 1 thread, opencl on PoCL uses every core.")
    n_rounds = max((m["rounds"] for m in moe.values()), default=1)
    if n_rounds > 1:
        L.append("")
        L.append(f"{n_rounds} rounds: each configuration's moe4j cases and peer ran back to back, then the next configuration, "
                 f"and the whole sequence {n_rounds} times. Times and tokens/s are medians over the rounds; moe4j / peer is the "
                 "median of the rounds' ratios, each between figures taken minutes apart (the rounds' own ratios in brackets).")
    L.append("")
    L.append("| config | mode | moe4j backend | T | ms/call (calls) | moe4j tokens/s | moe4j GFLOP/s | peer tokens/s (T threads) "
             "| moe4j / peer | moe4j / SGEMM | peer / SGEMM |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["backend"] is None:
            L.append(f"| {r['config']} | {MODES[r['mode']]} | (not run) | - | - | - | - | "
                     f"1T {fmt(r['peer1_tokens_per_s'])}, 2T {fmt(r['peer2_tokens_per_s'])} | - | - | - |")
            continue
        L.append(f"| {r['config']} | {MODES[r['mode']]} | {r['backend']} | {r['threads']} | "
                 f"{fmt(r['moe4j_ms'])} ({r['moe4j_calls_measured']}) | "
                 f"{fmt(r['moe4j_tokens_per_s'])} | {fmt(r['moe4j_gflops'], 2)} | "
                 f"{fmt(r['peer_tokens_per_s'])}{' (' + r['peer_dispatch'] + ')' if r['config'] == 'Switch' and r['peer_dispatch'] else ''} | "
                 f"{fmt(r['ratio_to_peer'], 3)}{round_list(r['ratio_to_peer_rounds'])} | {fmt(r['ratio_to_sgemm'], 3)} | "
                 f"{fmt(r['peer_ratio_to_sgemm'], 2)} |")
    L.append("")
    if skipped:
        L.append("Not run:")
        seen = set()
        for s in skipped:
            key = (s["backend"], s["reason"])
            cases = [f"{x['config']} {x['mode']}" for x in skipped if (x["backend"], x["reason"]) == key]
            if key in seen:
                continue
            seen.add(key)
            L.append(f"- {s['backend']}: {', '.join(cases)}: {s['reason']}")
        L.append("")
    if scaling:
        L.append("E = 64 vs E = 8, reference (LayerBenchmark; d=256 h=512 k=2, Mixtral). The router's share of the GEMM FLOPs "
                 "(2TdE vs 2Tk d h 3) predicts the ratio; E64 - E8 is the extra time at E = 64, which reading E d h 3 weights "
                 "once per call would keep the same at every T:")
        L.append("")
        L.append("| T | mode | E=8 ms | E=64 ms | E64 - E8 ms | ratio | ratio of fastest | predicted by the router |")
        L.append("|---|---|---|---|---|---|---|---|")
        for sc in scaling.values():
            L.append(f"| {sc['T']} | {MODES[sc['mode']]} | {fmt(sc['E8_ms'])} | {fmt(sc['E64_ms'])} | {fmt(sc['E64_minus_E8_ms'])} | "
                     f"{sc['measured_ratio']:.3f} | {sc['measured_ratio_of_minima']:.3f} | {sc['predicted_ratio']:.3f} |")
        L.append("")
    if stages:
        names = ["router", "route", "dispatch", "experts", "combine", "losses", "backward"]
        cs = [c for c in ["S", "E8", "E64"] if c in stages]
        L.append("Reference stages, ms per call (ReferenceStagesBenchmark):")
        L.append("")
        L.append("| stage | " + " | ".join(cs) + (" | E64 / E8 |" if "E8" in cs and "E64" in cs else " |"))
        L.append("|---|" + "---|" * (len(cs) + (1 if "E8" in cs and "E64" in cs else 0)))
        for n in names:
            vals = [stages[c].get(n) for c in cs]
            extra = ""
            if "E8" in cs and "E64" in cs and stages["E8"].get(n) and stages["E64"].get(n):
                extra = f" {stages['E64'][n] / stages['E8'][n]:.2f} |"
            L.append(f"| {n} | " + " | ".join(fmt(v, 3) for v in vals) + " |" + extra)
        L.append("")
    if cpu_stages:
        names = ["router", "dispatch", "experts", "combine"]
        order = ["S", "M", "L", "W", "Switch"]
        cs = sorted(cpu_stages, key=lambda k: (order.index(k.split()[0]) if k.split()[0] in order else len(order), k))
        L.append("moe-cpu stages of an inference forward, ms per call (CpuStagesBenchmark; each stage alone, then the whole forward):")
        L.append("")
        L.append("| stage | " + " | ".join(cs) + " |")
        L.append("|---|" + "---|" * len(cs))
        for n in names:
            L.append(f"| {n} | " + " | ".join(fmt(cpu_stages[c].get(n), 3) for c in cs) + " |")
        sums = [sum(cpu_stages[c].get(n) or 0 for n in names) for c in cs]
        L.append("| sum of the stages | " + " | ".join(fmt(v, 3) for v in sums) + " |")
        L.append("| forward | " + " | ".join(fmt(cpu_stages[c].get("forward"), 3) for c in cs) + " |")
        L.append("| experts / forward | " + " | ".join(
            f"{cpu_stages[c]['experts'] / cpu_stages[c]['forward']:.2f}" if cpu_stages[c].get("experts") and cpu_stages[c].get("forward")
            else "–" for c in cs) + " |")
        L.append("")
    if opencl_stages:
        cs = [c for c in ["S", "M", "L", "W", "Switch"] if c in opencl_stages]
        L.append("OpenCL stages of an inference forward, ms per call (OpenClStagesBenchmark). The forward is one launch whose phases "
                 "read what the phases before them left on the device, so each row runs the launch through that stage; a stage's own "
                 "time is the difference from the row above (in brackets):")
        L.append("")
        L.append("| run through | " + " | ".join(cs) + " |")
        L.append("|---|" + "---|" * len(cs))
        prev = {c: 0.0 for c in cs}
        for n, label in [("throughRouter", "router (with the upload)"), ("throughDispatch", "dispatch"), ("throughExperts", "experts"),
                         ("throughCombine", "combine"), ("forward", "whole forward (losses, read-back)")]:
            cells = []
            for c in cs:
                v = opencl_stages[c].get(n)
                cells.append("-" if v is None else f"{fmt(v)} ({fmt(v - prev[c])})")
                prev[c] = v if v is not None else prev[c]
            L.append(f"| {label} | " + " | ".join(cells) + " |")
        L.append("")
    if len(loop_order) == 2:
        a, b = loop_order["referenceOrder"], loop_order["rowOrder"]
        L.append(f"One SwiGLU expert in double, {a['rows']} rows, d={a['d']} h={a['h']} (ExpertLoopOrderBenchmark, bit-identical results): "
                 f"the reference's loop order {fmt(a['ms'])} ms ({fmt(a['gflops'], 2)} GFLOP/s), loops swapped to stride 1 "
                 f"{fmt(b['ms'])} ms ({fmt(b['gflops'], 2)} GFLOP/s): {a['ms'] / b['ms']:.2f}x.")
        L.append("")
    mem_rows = []
    for r in memory:
        peers = [p for p in peer if p["config"] == r["config"] and p["mode"] == r["mode"] and "rss_increase_mb" in p]
        peer_mb = max((p["rss_increase_mb"] for p in peers), default=None)
        mem_rows.append({**r, "peer_rss_increase_mb": peer_mb,
                         "ratio_bound_to_peer": r["peak_bound_mb"] / peer_mb if peer_mb else None})
    if mem_rows:
        L.append("Memory, MB (10^6 bytes). moe4j cpu (MemoryFootprint): live objects retained by the layer after ten calls, "
                 "with its weights, reused buffers, input and output gradient, plus everything one more call allocates; "
                 "their sum bounds the peak from above. Peer: peak RSS over the RSS before the layer was built (torch alone), "
                 "the largest over its runs.")
        L.append("")
        L.append("| config | mode | moe4j retained | moe4j allocated per call | moe4j peak bound | peer peak RSS increase | bound / peer |")
        L.append("|---|---|---|---|---|---|---|")
        for r in mem_rows:
            L.append(f"| {r['config']} | {MODES[r['mode']]} | {fmt(r['retained_mb'])} | {fmt(r['call_allocated_mb'])} | "
                     f"{fmt(r['peak_bound_mb'])} | {fmt(r['peer_rss_increase_mb'])} | {fmt(r['ratio_bound_to_peer'], 2)} |")
        L.append("")
    report = "\n".join(L)
    print(report)
    with open(os.path.join(folder, "summary.md"), "w") as f:
        f.write(report + "\n")
    with open(os.path.join(folder, "results.json"), "w") as f:
        json.dump({"machine": machine, "sgemm_gflops": {"1": sg[1], "2": sg[2]}, "sgemm_probes": sgemm,
                   "configs": cfg, "rows": rows, "moe4j": list(moe.values()), "peer": peer,
                   "scaling_E64_vs_E8": scaling, "memory": mem_rows, "reference_stages_ms": stages, "cpu_stages_ms": cpu_stages, "opencl_stages_ms": opencl_stages, "expert_loop_order": loop_order, "skipped": skipped}, f, indent=1)
    chart(folder, rows, backends, machine)


def chart(folder, rows, backends, machine):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib missing: no chart)", file=sys.stderr)
        return
    by_key = {}
    for r in rows:
        d = by_key.setdefault((r["config"], r["mode"]), {})
        if r["backend"]:
            d["moe4j " + r["backend"]] = r["moe4j_tokens_per_s"]
        if r["peer1_tokens_per_s"]:
            d["PyTorch 1 thread"] = r["peer1_tokens_per_s"]
        if r["peer2_tokens_per_s"]:
            d["PyTorch 2 threads"] = r["peer2_tokens_per_s"]
    groups = list(by_key.items())
    series = ["moe4j " + b for b in backends] + ["PyTorch 1 thread", "PyTorch 2 threads"]
    fig, ax = plt.subplots(figsize=(11, 5))
    width = 0.8 / len(series)
    for i, s in enumerate(series):
        xs = [j + i * width for j in range(len(groups))]
        ys = [g[1].get(s, 0) for g in groups]
        ax.bar(xs, ys, width, label=s)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(groups))])
    ax.set_xticklabels([f"{c}\n{MODES[m]}" for (c, m), _ in groups], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("tokens/s (log scale)")
    ax.set_title(f"moe4j vs PyTorch peer, {machine['date_utc'][:10]}, {machine['cores']} shared cores ({machine['cpu_model']})", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "chart.png"), dpi=110)


if __name__ == "__main__":
    main()

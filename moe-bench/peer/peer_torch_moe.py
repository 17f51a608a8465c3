#!/usr/bin/python3
"""Peer sparse-MoE layers in PyTorch on CPU: what moe4j's benchmarks are compared against.

Provenance: copied from peer_torch_moe.py of moe4j's performance-anchor study (2026-11-22; the
study's scripts are not part of this repository), trimmed for moe-bench/run-bench.sh: the
interleaved "BLAS mix" reference and the routing statistics were removed (run-bench.sh measures
the machine's SGEMM rate separately with sgemm_probe.py); the layers, the configurations, the
timing loop and the FLOP count are unchanged. The peak-RSS bookkeeping is rewritten: the RSS
before the layer is built (torch alone) and the peak RSS after the timed calls, from
/proc/self/status, so that the increase (the layer's weights, input, activations and gradients)
can be compared with moe4j's MemoryFootprint.

Two layers, written for that study (no code copied from the projects they follow):

* "mixtral" -- the structure of Hugging Face transformers' MixtralSparseMoeBlock
  (models/mixtral/modeling_mixtral.py at commit 00d4b3d2142cb4ced2f51b90614b5d26bc045015, the
  per-expert nn.Linear version): router nn.Linear(d, E, bias=False) -> softmax in fp32 ->
  topk(k) -> divide by the sum of the k weights -> one_hot(selected, E).permute(2, 1, 0) expert
  mask -> Python loop over the experts that received tokens: torch.where on the mask gives
  (slot, token) indices, gather the tokens, SwiGLU expert w2(silu(w1 x) * w3 x) (three bias-free
  nn.Linear), scale by the routing weight, index_add_ into a zero [T, d] output.  Aux loss: the
  Switch-style load-balancing loss of transformers' load_balancing_loss_func (no attention mask).
* "switch" -- Switch-Transformer top-1 layer in the Mesh-TF / GShard einsum formulation (as in
  DeepSpeed's deepspeed/moe/sharded_moe.py top1gating, without random token selection):
  softmax router, argmax expert, position = cumsum(one_hot) - 1, tokens past capacity
  C = ceil(T / E * capacity_factor) dropped first come first served, dense [T, E, C] combine
  tensor, einsum dispatch into [E, C, d], relu(bmm(xe, W1)) @ W2, einsum combine.
  --dispatch index replaces the two dense einsums by index_copy / index_select on the same
  [E*C, d] buffer (what a CPU implementation would do; same result).

Usage:
    /usr/bin/python3 peer_torch_moe.py CONFIG THREADS MODE [--reps N] [--warmup N] [--dispatch einsum|index]
    CONFIG in S, M, L, W, Switch (or "check" for a small correctness test); MODE fwd or fwdbwd
    fwd    = inference forward under torch.no_grad()
    fwdbwd = forward with autograd + backward of loss = sum(output) + aux_coef * aux_loss,
             gradients for all parameters and for the input; grads reset to None each step.

Prints one JSON line.  Expert GEMM FLOPs are counted as moe4j's BenchConfigs counts them:
forward 2*T*k*d*h*3 (SwiGLU) or 2*T*k*d*h*2 (plain FFN); forward+backward = 3x forward.
Router, softmax, gather/scatter and (for Switch) the dispatch einsums are not counted.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

CONFIGS = {
    #         T     d     h     E   k  layer
    "S": (512, 256, 1024, 8, 2, "mixtral"),
    "M": (2048, 512, 2048, 8, 2, "mixtral"),
    "L": (4096, 1024, 4096, 8, 2, "mixtral"),
    "W": (2048, 512, 1024, 64, 2, "mixtral"),
    "Switch": (2048, 512, 2048, 16, 1, "switch"),
}
CAPACITY_FACTOR = 1.25


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("config", choices=list(CONFIGS) + ["check"])
    ap.add_argument("threads", type=int, nargs="?", default=2)
    ap.add_argument("mode", choices=["fwd", "fwdbwd", "bwd"], nargs="?", default="fwd",
                    help="fwd, or fwdbwd (alias bwd): forward + backward")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--dispatch", choices=["einsum", "index"], default="einsum",
                    help="Switch layer only: dense one-hot einsum dispatch (GShard) or index-based")
    ap.add_argument("--aux-coef", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args()


ARGS = parse_args()
if ARGS.mode == "bwd":
    ARGS.mode = "fwdbwd"
# Thread pools must be sized before torch (and the BLAS it loads) starts.
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

torch.set_num_threads(ARGS.threads)


def openblas_state():
    """Which BLAS this process really loaded (torch is built with BLAS_INFO=generic: libblas.so.3)."""
    libs = sorted({os.path.basename(os.path.dirname(p)) + "/" + os.path.basename(p)
                   for p in (line.split()[-1] for line in open("/proc/self/maps"))
                   if "blas" in p or "gomp" in p})
    try:
        import ctypes

        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return {"openblas_core": lib.openblas_get_corename().decode(),
                "openblas_threads": lib.openblas_get_num_threads(), "libs_loaded": libs}
    except OSError:
        return {"openblas_core": None, "libs_loaded": libs}


# --------------------------------------------------------------------------- Mixtral-style layer
class GatedExpert(nn.Module):
    """SwiGLU feed-forward: w2(silu(w1 x) * w3 x), bias-free."""

    def __init__(self, d, h):
        super().__init__()
        self.w1 = nn.Linear(d, h, bias=False)
        self.w2 = nn.Linear(h, d, bias=False)
        self.w3 = nn.Linear(d, h, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class MixtralStyleMoE(nn.Module):
    def __init__(self, d, h, n_experts, top_k):
        super().__init__()
        self.d, self.n_experts, self.top_k = d, n_experts, top_k
        self.gate = nn.Linear(d, n_experts, bias=False)
        self.experts = nn.ModuleList(GatedExpert(d, h) for _ in range(n_experts))

    def forward(self, x):
        # x: [T, d] (the HF block flattens [batch, seq, d] to this first)
        logits = self.gate(x)                                        # [T, E]
        probs = F.softmax(logits, dim=1, dtype=torch.float)
        weights, chosen = torch.topk(probs, self.top_k, dim=-1)      # [T, k]
        weights /= weights.sum(dim=-1, keepdim=True)
        weights = weights.to(x.dtype)
        out = torch.zeros((x.shape[0], self.d), dtype=x.dtype, device=x.device)
        # mask[e, slot, t] = 1 when token t chose expert e in its slot-th place
        mask = F.one_hot(chosen, num_classes=self.n_experts).permute(2, 1, 0)
        used = torch.greater(mask.sum(dim=(-1, -2)), 0).nonzero()
        for e in used:
            slot, tok = torch.where(mask[e].squeeze(0))
            rows = x[None, tok].reshape(-1, self.d)
            y = self.experts[e](rows) * weights[tok, slot, None]
            out.index_add_(0, tok, y.to(x.dtype))
        return out, logits


def mixtral_aux_loss(logits, n_experts, top_k):
    probs = F.softmax(logits, dim=-1)
    _, chosen = torch.topk(probs, top_k, dim=-1)
    assign = F.one_hot(chosen, n_experts)                 # [T, k, E]
    frac_tokens = torch.mean(assign.float(), dim=0)       # [k, E]
    frac_prob = torch.mean(probs, dim=0)                  # [E]
    return torch.sum(frac_tokens * frac_prob.unsqueeze(0)) * n_experts


# --------------------------------------------------------------------------- Switch-style layer
class SwitchStyleMoE(nn.Module):
    """Top-1 ReLU FFN experts with capacity, expert weights stacked on a leading E axis."""

    def __init__(self, d, h, n_experts, capacity_factor, dispatch="einsum"):
        super().__init__()
        self.d, self.h, self.n_experts = d, h, n_experts
        self.capacity_factor, self.dispatch = capacity_factor, dispatch
        self.router = nn.Linear(d, n_experts, bias=False)
        self.w_in = nn.Parameter(torch.empty(n_experts, d, h).uniform_(-d ** -0.5, d ** -0.5))
        self.w_out = nn.Parameter(torch.empty(n_experts, h, d).uniform_(-h ** -0.5, h ** -0.5))
        self.last_stats = {}

    def capacity(self, n_tokens):
        return int(math.ceil(n_tokens / self.n_experts * self.capacity_factor))

    def forward(self, x):
        T, E = x.shape[0], self.n_experts
        C = self.capacity(T)
        gates = F.softmax(self.router(x), dim=1)                  # [T, E] fp32
        expert = torch.argmax(gates, dim=1)                        # [T]
        onehot = F.one_hot(expert, num_classes=E)                  # [T, E] int64
        # load-balancing loss uses the assignment before dropping
        aux = torch.sum(gates.mean(dim=0) * onehot.float().mean(dim=0)) * E
        pos = torch.cumsum(onehot, dim=0) - 1                      # position inside the expert buffer
        onehot = onehot * torch.lt(pos, C)                         # drop overflow tokens
        pos_t = torch.sum(pos * onehot, dim=1)                     # [T]
        gate_t = torch.sum(gates * onehot, dim=1)                  # [T], 0 for dropped tokens
        kept = onehot.sum(dim=1)
        self.last_stats = {"capacity": C, "dropped_frac": round(1.0 - kept.float().mean().item(), 4)}
        if self.dispatch == "einsum":
            pos_1h = F.one_hot(pos_t, num_classes=C).to(x.dtype)  # [T, C]
            combine = gate_t[:, None, None] * onehot.to(x.dtype)[:, :, None] * pos_1h[:, None, :]  # [T, E, C]
            dispatch = combine.ne(0).to(x.dtype)
            xe = torch.einsum("tec,td->ecd", dispatch, x)          # [E, C, d]
            ye = torch.bmm(F.relu(torch.bmm(xe, self.w_in)), self.w_out)  # [E, C, d]
            out = torch.einsum("tec,ecd->td", combine, ye)
        else:
            keep = kept.nonzero().squeeze(1)                       # tokens that found a slot
            slot = expert[keep] * C + pos_t[keep]                  # row in the [E*C, d] buffer
            xe = x.new_zeros(E * C, self.d).index_copy(0, slot, x[keep]).view(E, C, self.d)
            ye = torch.bmm(F.relu(torch.bmm(xe, self.w_in)), self.w_out).view(E * C, self.d)
            out = x.new_zeros(T, self.d).index_copy(0, keep, ye.index_select(0, slot) * gate_t[keep, None])
        return out, aux


# --------------------------------------------------------------------------- benchmark driver
def build(name, dispatch):
    T, d, h, E, k, kind = CONFIGS[name]
    if kind == "mixtral":
        layer = MixtralStyleMoE(d, h, E, k)
    else:
        layer = SwitchStyleMoE(d, h, E, CAPACITY_FACTOR, dispatch)
    return layer, T, d, h, E, k, kind


def step(layer, kind, x, mode, k):
    if mode == "fwd":
        with torch.no_grad():
            out, _ = layer(x)
        return out
    out, extra = layer(x)
    aux = mixtral_aux_loss(extra, layer.n_experts, k) if kind == "mixtral" else extra
    loss = out.sum() + ARGS.aux_coef * aux
    loss.backward()
    for p in layer.parameters():
        p.grad = None
    x.grad = None
    return out


def check():
    """Small correctness test: the loop-and-index_add_ layer equals a dense evaluation of all experts,
    and the two Switch dispatch forms give the same output and gradients."""
    torch.manual_seed(0)
    T, d, h, E, k = 64, 16, 32, 4, 2
    layer = MixtralStyleMoE(d, h, E, k)
    x = torch.randn(T, d)
    out, logits = layer(x)
    p = F.softmax(logits, dim=1)
    w, sel = torch.topk(p, k, dim=-1)
    w = w / w.sum(-1, keepdim=True)
    dense = torch.stack([ex(x) for ex in layer.experts], dim=1)            # [T, E, d]
    gate_full = torch.zeros(T, E).scatter(1, sel, w)
    ref = (dense * gate_full[:, :, None]).sum(1)
    err1 = (out - ref).abs().max().item()
    sw_e = SwitchStyleMoE(d, h, E, CAPACITY_FACTOR, "einsum")
    sw_i = SwitchStyleMoE(d, h, E, CAPACITY_FACTOR, "index")
    sw_i.load_state_dict(sw_e.state_dict())
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    oa, aa = sw_e(xa)
    ob, ab = sw_i(xb)
    (oa.sum() + aa).backward()
    (ob.sum() + ab).backward()
    err2 = (oa - ob).abs().max().item()
    err3 = max((xa.grad - xb.grad).abs().max().item(),
               (sw_e.w_in.grad - sw_i.w_in.grad).abs().max().item(),
               (sw_e.router.weight.grad - sw_i.router.weight.grad).abs().max().item())
    ok = err1 < 1e-5 and err2 < 1e-5 and err3 < 1e-4
    print(json.dumps({"bench": "peer_torch_moe_check", "mixtral_vs_dense_maxerr": err1,
                      "switch_einsum_vs_index_out_maxerr": err2, "switch_grad_maxerr": err3,
                      "dropped_frac": sw_e.last_stats.get("dropped_frac"), "ok": ok}))
    return 0 if ok else 1


def rss_mb(field):
    """VmRSS (resident now) or VmHWM (peak resident) of this process, in MB (10^6 bytes)."""
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024 / 1e6
    return None


def main():
    if ARGS.config == "check":
        return check()
    rss_before = rss_mb("VmRSS")
    torch.manual_seed(ARGS.seed)
    layer, T, d, h, E, k, kind = build(ARGS.config, ARGS.dispatch)
    x = torch.randn(T, d)
    if ARGS.mode == "fwdbwd":
        x.requires_grad_(True)
    n_mats = 3 if kind == "mixtral" else 2
    fwd_gflop = 2.0 * T * k * d * h * n_mats / 1e9
    gflop = fwd_gflop * (3.0 if ARGS.mode == "fwdbwd" else 1.0)

    for _ in range(ARGS.warmup):
        step(layer, kind, x, ARGS.mode, k)
    times = []
    for _ in range(ARGS.reps):
        t0 = time.perf_counter()
        step(layer, kind, x, ARGS.mode, k)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    rss_peak = rss_mb("VmHWM")
    rec = {
        "bench": "peer_torch_moe", "config": ARGS.config, "layer": kind,
        "dispatch": ARGS.dispatch if kind == "switch" else "loop_index_add",
        "mode": ARGS.mode, "threads": ARGS.threads, "T": T, "d": d, "h": h, "E": E, "k": k,
        "reps": ARGS.reps, "warmup": ARGS.warmup,
        "ms_median": round(med * 1e3, 2), "ms_min": round(min(times) * 1e3, 2), "ms_max": round(max(times) * 1e3, 2),
        "tokens_per_s_median": round(T / med, 1),
        "expert_gflop": round(gflop, 3),
        "gflops_median": round(gflop / med, 2), "gflops_min": round(gflop / max(times), 2),
        "gflops_max": round(gflop / min(times), 2),
        "rss_before_layer_mb": round(rss_before, 1), "rss_peak_mb": round(rss_peak, 1),
        "rss_increase_mb": round(rss_peak - rss_before, 1),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"), **openblas_state(),
        **({"capacity": layer.capacity(T)} if kind == "switch" else {}),
    }
    print(json.dumps(rec), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

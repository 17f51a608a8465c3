#!/usr/bin/env python3
"""Copies golden MoE test cases into the conformance suite's resources with moe4j's own manifest.

Usage: scripts/refresh-golden.py SOURCE_DIR

SOURCE_DIR holds one folder per case, each with a case.json (produced alongside the tensors by
running a public MoE implementation) and raw little-endian float64 tensors <name>.f64. For every
case this writes conformance-tests/src/main/resources/io/github/moe4j/conformance/golden/<case>/
with the tensors and a case.properties manifest of facts: source repository, path, commit or
release, functions used, hyperparameters, suggested tolerance, and every tensor's shape and role.
It also writes golden/index.txt, the list of cases. They are main resources so that they ship in
the suite's jar (a backend author's build runs them); the reference's own double-precision check
of the same cases (ReferenceGoldenCasesTest) reads them from there. Python standard library only.
"""
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = [
    os.path.join(HERE, "..", "conformance-tests", "src", "main", "resources", "io", "github", "moe4j", "conformance", "golden"),
]


def scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    return str(v)


def escape(s):
    return s.replace("\\", "\\\\").replace("\n", " ").replace("=", "\\=").replace(":", "\\:")


def sources(case):
    src = case["source"]
    return src if isinstance(src, list) else [src]


def manifest(case_id, case):
    lines = [f"# moe4j golden case manifest, written by scripts/refresh-golden.py; facts only",
             f"id={case_id}",
             f"implementation={case['implementation']}",
             f"dtype={escape(str(case.get('dtype', 'float64')))}"]
    for i, src in enumerate(sources(case)):
        lines.append(f"source.{i}.repo={escape(src['repo'])}")
        lines.append(f"source.{i}.path={escape(src['path'])}")
        version = src.get("commit") or ("release " + src["release"] if src.get("release") else "unknown")
        lines.append(f"source.{i}.version={escape(version)}")
        if src.get("file_sha256"):
            lines.append(f"source.{i}.sha256={src['file_sha256']}")
    defs = case.get("definitions_used")
    if isinstance(defs, dict):
        defs = [f"{f}:{d}" for f, ds in defs.items() for d in ds]
    if defs:
        lines.append("functions=" + escape(",".join(defs)))
    for k, v in case["hyperparameters"].items():
        lines.append(f"hp.{k}={escape(scalar(v))}")
    tol = case["tolerance_suggestion"]
    lines.append(f"tolerance.rtol={tol['rtol']}")
    lines.append(f"tolerance.atol={tol['atol']}")
    lines.append(f"min_router_logit_gap={case.get('min_router_logit_gap')}")
    for name, t in case["tensors"].items():
        lines.append(f"tensor.{name}.shape={','.join(str(s) for s in t['shape'])}")
        lines.append(f"tensor.{name}.role={t['role']}")
        lines.append(f"tensor.{name}.layout={escape(t.get('layout', ''))}")
    return "\n".join(lines) + "\n"


def write(source, cases, target):
    if os.path.isdir(target):
        shutil.rmtree(target)
    os.makedirs(target)
    for case_id in cases:
        with open(os.path.join(source, case_id, "case.json")) as f:
            case = json.load(f)
        out = os.path.join(target, case_id)
        os.makedirs(out)
        for name, t in case["tensors"].items():
            shutil.copyfile(os.path.join(source, case_id, t["file"]), os.path.join(out, name + ".f64"))
        with open(os.path.join(out, "case.properties"), "w") as f:
            f.write(manifest(case_id, case))
    with open(os.path.join(target, "index.txt"), "w") as f:
        f.write("\n".join(cases) + "\n")
    print(f"{len(cases)} cases written to {os.path.normpath(target)}")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    source = sys.argv[1]
    cases = sorted(d for d in os.listdir(source) if os.path.isfile(os.path.join(source, d, "case.json")))
    for target in TARGETS:
        write(source, cases, target)


if __name__ == "__main__":
    main()

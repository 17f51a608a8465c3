#!/usr/bin/python3
"""Hot methods and lines of a JFR recording's execution samples (JDK 17 has no `jfr view`).

Usage: /usr/bin/python3 jfr_hot.py FILE.jfr [--top 15] [--thread SUBSTRING]

Reads `jfr print --json --events jdk.ExecutionSample` and prints, over the samples of the threads
whose name contains --thread (default: every thread), the share of samples
  * self, by top frame (method and line): where the CPU was,
  * inclusive, by method: how much time was spent under each method (counted once per sample).
"""
import argparse
import collections
import json
import subprocess


def frames(event):
    st = event["values"].get("stackTrace") or {}
    for f in st.get("frames", []):
        m = f["method"]
        cls = m["type"]["name"].split(".")[-1]
        yield f"{cls}.{m['name']}", f.get("lineNumber", -1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--thread", default="")
    args = ap.parse_args()
    out = subprocess.run(["jfr", "print", "--json", "--stack-depth", "64", "--events", "jdk.ExecutionSample", args.file],
                         capture_output=True, text=True, check=True).stdout
    events = json.loads(out)["recording"]["events"]
    self_line = collections.Counter()
    self_method = collections.Counter()
    incl = collections.Counter()
    n = 0
    for e in events:
        th = (e["values"].get("sampledThread") or {}).get("javaName") or ""
        if args.thread not in th:
            continue
        fs = list(frames(e))
        if not fs:
            continue
        n += 1
        self_line[f"{fs[0][0]}:{fs[0][1]}"] += 1
        self_method[fs[0][0]] += 1
        for m in {m for m, _ in fs}:
            incl[m] += 1
    print(f"{n} samples")
    for title, c in (("self, by line", self_line), ("self, by method", self_method), ("inclusive, by method", incl)):
        print(f"-- {title}")
        for k, v in c.most_common(args.top):
            print(f"{100.0 * v / max(n, 1):6.1f} %  {v:6d}  {k}")


if __name__ == "__main__":
    main()

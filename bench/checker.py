"""Benchmark the linearizability checker on the Porcupine corpus; prints JSON.

Check time (pairing, compiling and searching, in process) is measured apart from parse time
(reading the file), each the minimum over --repeats runs, as Porcupine's reference timings are.
Goals on the project's 2-core machine: the 102 etcd logs in <= 0.4 s of check time in total,
c50-ok and c50-bad <= 0.1 s each; every key of c50-ok/c50-bad checked alone decided in 10 s.

    python bench/checker.py [--repeats 3] [--corpus ../shared/data/porcupine]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from splitbrain.checker.linearizable import check
from splitbrain.history import pair_calls
from splitbrain.history.formats import load_history

DEFAULT_CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "porcupine"


def _timed(fn, repeats: int):
    best = float("inf")
    value = None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def bench_file(path: Path, repeats: int) -> dict:
    parse_s, history = _timed(lambda: load_history(path), repeats)
    check_s, result = _timed(lambda: check(history), repeats)
    return {"parse_s": round(parse_s, 6), "check_s": round(check_s, 6), "valid": result["valid"]}


def bench_keys_alone(path: Path, repeats: int) -> dict:
    calls = pair_calls(load_history(path).ops)
    out = {}
    for key in sorted({c.key for c in calls}, key=lambda k: (len(k), k)):
        mine = [c for c in calls if c.key == key]
        seconds, result = _timed(lambda mine=mine: check(mine, "kv", time_limit=10), repeats)
        out[key] = {"check_s": round(seconds, 6), "valid": result["valid"]}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args()
    if not args.corpus.is_dir():
        print(f"corpus not found: {args.corpus}", file=sys.stderr)
        return 3
    etcd = {p.name: bench_file(p, args.repeats)
            for p in sorted((args.corpus / "jepsen").glob("etcd_*.log"))
            if p.stat().st_size > 0}  # etcd_095 is empty: no verdict
    kv = {p.stem: bench_file(p, args.repeats) for p in sorted((args.corpus / "kv").glob("*.txt"))}
    alone = {name: bench_keys_alone(args.corpus / "kv" / f"{name}.txt", args.repeats)
             for name in ("c50-ok", "c50-bad")}
    slowest = sorted(etcd.items(), key=lambda kv_: -kv_[1]["check_s"])[:5]
    report = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "repeats": args.repeats,
        "etcd": {
            "files": len(etcd),
            "total_check_s": round(sum(r["check_s"] for r in etcd.values()), 4),
            "total_parse_s": round(sum(r["parse_s"] for r in etcd.values()), 4),
            "goal_total_check_s": 0.4,
            "slowest": {name: r["check_s"] for name, r in slowest},
            "per_file": etcd,
        },
        "kv": {"goal_c50_check_s": 0.1, "per_file": kv},
        "kv_keys_alone": {
            name: {"max_check_s": max(r["check_s"] for r in keys.values()),
                   "undecided": [k for k, r in keys.items() if r["valid"] == "unknown"],
                   "per_key": keys}
            for name, keys in alone.items()
        },
    }
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

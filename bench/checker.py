"""Benchmark the linearizability checker; prints JSON with the goals beside the numbers.

Three parts, each skippable:
- scale: register histories from splitbrain.testing.registers (100 keys, 50 processes, 5% info,
  read/write/cas; linearizable by construction) at --sizes calls. Each size is checked with
  `splitbrain check --json FILE` in a fresh process --repeats times: the whole process's wall
  time and peak RSS (the largest process of its tree, from wait4) and the check time it prints;
  medians reported, with the CPU time of the process tree (user + system, from wait4: on a
  shared machine it moves less than wall time). Time per call is the check time over the
  calls (as issue 13 measured its growth; the whole process adds a fixed start-up). One
  corrupted history (--corrupt reads given a value never written) shows an invalid verdict's
  cost.
- corpus: Porcupine's etcd logs and kv histories, read and paired once (parse_s), then checked
  in process (check_s: the minimum of --repeats, as Porcupine's reference timings are), in
  each engine; every key of c50-ok/c50-bad also alone. verdict_s is the check without the
  explanation of an invalid key (describe_failure=False), which is all Porcupine computes;
  79 of the 102 etcd logs are invalid.
- parsers: history.jsonl decoded by orjson and by msgspec, the choice the reader made.

    python bench/checker.py [--sizes 10000,100000,1000000] [--repeats 3] [--skip scale]

Goals (issue 13, on the project's 2-core machine): 100k calls whole process <= 0.5 s and check
<= 0.1 s; 1M calls whole process <= 8 s and RSS <= 1 GB; time per call within 25% from 10k to
1M; the 102 etcd logs <= 20 ms of check in total and <= 0.1 ms for the median file; c50-ok and
c50-bad <= 10 ms each with every key decided. Porcupine v1.3.0 on the same histories, measured
once on this machine (its Go build cannot be fetched here), is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from splitbrain.checker.linearizable import check
from splitbrain.checker.search import ENGINES
from splitbrain.history.formats import load_calls
from splitbrain.testing.registers import generate

DEFAULT_CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "porcupine"
PORCUPINE = {  # calls: (check s, whole process s, RSS MB), from issue 13
    10_000: (0.016, 0.07, 15), 100_000: (0.17, 0.9, 108), 1_000_000: (2.8, 12.0, 1500)}


def _timed(fn, repeats: int):
    best = float("inf")
    value = None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def history_file(workdir: Path, calls: int, corrupt: int = 0) -> Path:
    """The generated history (made once, then reused: the same arguments give the same bytes)."""
    path = workdir / f"registers-{calls}-c{corrupt}.jsonl"
    if not path.exists():
        partial = path.with_suffix(".part")
        with partial.open("w") as out:
            generate(out, calls=calls, keys=100, processes=50, info=0.05, seed=1,
                     corrupt=corrupt)
        partial.rename(path)
    return path


def whole_process(path: Path) -> dict:
    """`splitbrain check --json PATH` in a fresh process: wall time, peak RSS, what it said."""
    argv = [sys.executable, "-m", "splitbrain", "check", "--json", str(path)]
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = child.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    result = json.loads(out)["files"][0]["result"]
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "rss_mb": usage.ru_maxrss / 1024, "exit": child.returncode,
            "check_s": result.get("check_time_s"), "valid": result["valid"],
            "engine": result.get("engine")}


def bench_scale(sizes: list[int], repeats: int, workdir: Path, corrupt: int) -> dict:
    rows = {}
    for calls in sizes:
        path = history_file(workdir, calls)
        runs = [whole_process(path) for _ in range(repeats)]
        wall = statistics.median(r["wall_s"] for r in runs)
        rows[str(calls)] = {
            "whole_process_s": round(wall, 3),
            "check_s": round(statistics.median(r["check_s"] for r in runs), 4),
            "cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 3),
            "rss_mb": round(statistics.median(r["rss_mb"] for r in runs)),
            "check_us_per_call": round(statistics.median(r["check_s"] for r in runs)
                                       / calls * 1e6, 3),
            "whole_us_per_call": round(wall / calls * 1e6, 2),
            "valid": runs[0]["valid"], "engine": runs[0]["engine"],
            "runs_wall_s": [round(r["wall_s"], 3) for r in runs],
            "porcupine_check_s_process_s_rss_mb": PORCUPINE.get(calls),
        }
    per_call = [r["check_us_per_call"] for r in rows.values()]
    out: dict = {"keys": 100, "processes": 50, "info": 0.05, "sizes": rows,
                 "check_us_per_call_spread": round(max(per_call) / min(per_call) - 1, 3)}
    if corrupt:
        path = history_file(workdir, sizes[min(1, len(sizes) - 1)], corrupt)
        runs = [whole_process(path) for _ in range(repeats)]
        wall = statistics.median(r["wall_s"] for r in runs)
        out["corrupted"] = {"calls": int(path.stem.split("-")[1]), "corrupt_reads": corrupt,
                            "whole_process_s": round(wall, 3),
                            "check_s": round(statistics.median(r["check_s"] for r in runs), 4),
                            "valid": runs[0]["valid"]}
    goals = {}
    if "100000" in rows:
        goals["100k_whole_process_s<=0.5"] = rows["100000"]["whole_process_s"] <= 0.5
        goals["100k_check_s<=0.1"] = rows["100000"]["check_s"] <= 0.1
    if "1000000" in rows:
        goals["1M_whole_process_s<=8"] = rows["1000000"]["whole_process_s"] <= 8
        goals["1M_rss_mb<=1024"] = rows["1000000"]["rss_mb"] <= 1024
    if "10000" in rows and "1000000" in rows:
        goals["check_us_per_call_within_25%"] = out["check_us_per_call_spread"] <= 0.25
    out["goals_met"] = goals
    return out


def bench_file(path: Path, repeats: int, engine: str) -> dict:
    parse_s, history = _timed(lambda: load_calls(path), repeats)
    calls = history.calls
    check_s, result = _timed(lambda: check(calls, engine=engine, workers=1), repeats)
    verdict_s, _ = _timed(lambda: check(calls, engine=engine, workers=1,
                                        describe_failure=False), repeats)
    return {"parse_s": round(parse_s, 6), "check_s": round(check_s, 6),
            "verdict_s": round(verdict_s, 6), "valid": result["valid"],
            "undecided": result.get("undecided", [])}


def bench_keys_alone(path: Path, repeats: int, engine: str) -> dict:
    calls = load_calls(path).calls
    out = {}
    for key in sorted({c.key for c in calls}, key=lambda k: (len(k), k)):
        mine = [c for c in calls if c.key == key]
        seconds, result = _timed(lambda mine=mine: check(mine, "kv", time_limit=10,
                                                         engine=engine), repeats)
        out[key] = {"check_s": round(seconds, 6), "valid": result["valid"]}
    return out


def bench_corpus(corpus: Path, repeats: int) -> dict:
    out = {}
    for engine in ENGINES:
        etcd = {p.name: bench_file(p, repeats, engine)
                for p in sorted((corpus / "jepsen").glob("etcd_*.log"))
                if p.stat().st_size > 0}  # etcd_095 is empty: no verdict
        kv = {p.stem: bench_file(p, repeats, engine) for p in sorted((corpus / "kv").glob("*.txt"))}
        alone = {name: bench_keys_alone(corpus / "kv" / f"{name}.txt", repeats, engine)
                 for name in ("c50-ok", "c50-bad")}
        checks = [r["check_s"] for r in etcd.values()]
        verdicts = [r["verdict_s"] for r in etcd.values()]
        c50 = {name: kv[name]["check_s"] for name in ("c50-ok", "c50-bad")}
        undecided = {name: [k for k, r in keys.items() if r["valid"] == "unknown"]
                     for name, keys in alone.items()}
        out[engine] = {
            "etcd": {"files": len(etcd), "total_check_s": round(sum(checks), 4),
                     "median_check_s": round(statistics.median(checks), 6),
                     "total_verdict_s": round(sum(verdicts), 4),
                     "median_verdict_s": round(statistics.median(verdicts), 6),
                     "total_parse_s": round(sum(r["parse_s"] for r in etcd.values()), 4),
                     "slowest": dict(sorted(((n, r["check_s"]) for n, r in etcd.items()),
                                            key=lambda x: -x[1])[:5]),
                     "invalid": sorted(n for n, r in etcd.items() if r["valid"] is False)},
            "kv": {name: {"check_s": r["check_s"], "verdict_s": r["verdict_s"], "valid": r["valid"]}
                   for name, r in kv.items()},
            "c50_keys_alone": {name: {"max_check_s": max(r["check_s"] for r in keys.values()),
                                      "undecided": undecided[name]}
                               for name, keys in alone.items()},
            "goals_met": {"etcd_total_check_s<=0.02": sum(checks) <= 0.02,
                          "etcd_median_check_s<=0.0001": statistics.median(checks) <= 0.0001,
                          "c50_check_s<=0.01": all(v <= 0.01 for v in c50.values()),
                          "c50_every_key_decided": not any(undecided.values())},
        }
    return out


def bench_parsers(path: Path, repeats: int) -> dict:
    """Decoding one history.jsonl: orjson line by line (dicts), msgspec into typed records."""
    import msgspec

    from splitbrain.gcpause import paused
    from splitbrain.history.stream import _DECODER

    data = path.read_bytes()
    lines = data.splitlines()
    out: dict = {"lines": len(lines)}
    with paused():
        out["msgspec_records_s"] = round(_timed(lambda: _DECODER.decode_lines(data),
                                                repeats)[0], 4)
        try:
            import orjson
        except ImportError:
            out["orjson"] = "not installed (pip install -e '.[bench]')"
            return out
        out["orjson_dicts_s"] = round(_timed(lambda: [orjson.loads(x) for x in lines],
                                             repeats)[0], 4)
    big = b'{"v": 123456789012345678901234567890}'
    out["orjson_keeps_big_ints"] = orjson.loads(big)["v"] == msgspec.json.decode(big)["v"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--corrupt", type=int, default=1, help="reads corrupted in one history")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/splitbrain-bench"))
    parser.add_argument("--skip", default="", help="comma-separated: scale, corpus, parsers")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    args.workdir.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    report: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                                "load_average": os.getloadavg()},
                    "repeats": args.repeats, "engines": list(ENGINES)}
    if "scale" not in skip:
        report["scale"] = bench_scale(sizes, args.repeats, args.workdir, args.corrupt)
    if "corpus" not in skip:
        if not args.corpus.is_dir():
            print(f"corpus not found: {args.corpus}", file=sys.stderr)
            return 3
        report["corpus"] = bench_corpus(args.corpus, args.repeats)
    if "parsers" not in skip:
        report["parsers"] = bench_parsers(history_file(args.workdir, sizes[0]), args.repeats)
    report["machine"]["load_average_after"] = os.getloadavg()
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

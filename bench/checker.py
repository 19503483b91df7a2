"""Benchmark the linearizability checker; prints JSON with every goal of issue 13 judged.

    python bench/checker.py                         # the whole table (about 4 minutes quiet)
    python bench/checker.py --skip scale,agreement  # the corpus items only (seconds)
    python bench/checker.py --sizes 10000,100000 --skip corpus,parsers,agreement

`must_show` lists each goal with its measured value, the goal and pass/fail; the parts below
hold the detail. Every number is a median (or, for the corpus, a minimum) over --repeats, and
the machine's load average is printed before and after: on a shared machine wall times move
with the load, so CPU time (user + system) is printed beside them.

- scale: register histories from splitbrain.testing.registers (100 keys, 50 processes, 5% info,
  read/write/cas; linearizable by construction; bench/histgen.py writes the same) at --sizes
  calls. Each is checked by `splitbrain check --json FILE` in a fresh process: wall time, CPU
  time of the process tree and peak RSS (from wait4), and the check time it prints (from the
  calls: reading is outside it). Children run as an installed package does, with their bytecode
  cached (PYTHONPYCACHEPREFIX under --workdir, warmed by one run first: this project's
  environment sets PYTHONDONTWRITEBYTECODE, which would make every start compile every
  module); `interpreter_s` is `python -c pass` on the same interpreter, the floor under every
  whole-process time. Time per call: the printed check time over the calls (as issue 13
  measured its growth), and the CPU time of check() in this process with one worker (the same
  work at every size, so parallelism does not flatter the large sizes); the goal holds when
  both stay within 25% from the smallest size to the largest. One corrupted history (--corrupt
  reads given a value never written) shows an invalid verdict's cost.
- corpus: Porcupine's etcd logs and kv histories, read once, then checked in this process
  (the minimum of --corpus-repeats, as Porcupine's reference timings are), in each engine, with
  the explanation of an invalid key (`check_s`) and without it (`verdict_s`, all Porcupine
  computes); 79 of the 102 etcd logs are invalid. Every key of c50-ok/c50-bad also alone.
- parsers: history.jsonl decoded by orjson and by msgspec, the choice the reader made.
- agreement: the log-agreement check (checker/agreement.py) in a fresh process over five
  nodes' events.jsonl for logs of --agreement-sizes entries, each node restarting from its
  last snapshot now and then (so more apply events than entries, as in a long run): wall time,
  peak RSS, time per apply event.

Porcupine v1.3.0 on the same histories, measured once on this machine (its Go build cannot be
fetched here), is printed beside them.
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
from splitbrain.history.stream import read_calls
from splitbrain.testing.registers import generate

DEFAULT_CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "porcupine"
PORCUPINE = {  # calls: (check s, whole process s, RSS MB), from issue 13
    10_000: (0.016, 0.07, 15), 100_000: (0.17, 0.9, 108), 1_000_000: (2.8, 12.0, 1500)}
GOALS = {  # issue 13's Must show
    "100k_whole_process_s": 0.5, "100k_check_s": 0.1, "1M_whole_process_s": 8.0,
    "1M_rss_mb": 1024, "check_us_per_call_spread": 0.25, "etcd_total_check_s": 0.02,
    "etcd_median_check_s": 0.0001, "c50-ok_check_s": 0.01, "c50-bad_check_s": 0.01}


def _min_time(fn, repeats: int, clock=time.perf_counter):
    best = float("inf")
    value = None
    for _ in range(repeats):
        start = clock()
        value = fn()
        best = min(best, clock() - start)
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


def _child_env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    return env


def _timed_child(argv: list[str], env: dict[str, str]) -> tuple[float, os.struct_rusage, int,
                                                                   bytes]:
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    out = child.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(child.pid, 0)
    return time.perf_counter() - start, usage, os.waitstatus_to_exitcode(status), out


def whole_process(path: Path, env: dict[str, str]) -> dict:
    """`splitbrain check --json PATH` in a fresh process: wall time, peak RSS, what it said."""
    wall, usage, code, out = _timed_child(
        [sys.executable, "-m", "splitbrain", "check", "--json", str(path)], env)
    result = json.loads(out)["files"][0]["result"]
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "rss_mb": usage.ru_maxrss / 1024, "exit": code,
            "check_s": result.get("check_time_s"), "valid": result["valid"],
            "engine": result.get("engine")}


def interpreter_s(env: dict[str, str], repeats: int) -> float:
    return statistics.median(_timed_child([sys.executable, "-c", "pass"], env)[0]
                             for _ in range(repeats))


def check_cpu_per_call(path: Path, repeats: int) -> float:
    """CPU time of check() with one worker, in this process, per call (µs): the median. One
    check first, unmeasured: the first in a process pays once for what every later one reuses
    (the allocator's arenas, lazily made tables), which is no cost per call."""
    calls = read_calls(path).calls
    check(calls, workers=1)
    times = []
    for _ in range(repeats):
        start = time.process_time()
        result = check(calls, workers=1)
        times.append(time.process_time() - start)
        assert result["valid"] is True, result.get("cause")
    return statistics.median(times) / len(calls) * 1e6


def _median(runs: list[dict], field: str) -> float:
    return statistics.median(r[field] for r in runs)


def bench_scale(sizes: list[int], repeats: int, workdir: Path, corrupt: int) -> dict:
    env = _child_env(workdir)
    rows = {}
    for calls in sizes:
        path = history_file(workdir, calls)
        whole_process(path, env)  # warm: bytecode cached, the file in the page cache
        runs = [whole_process(path, env) for _ in range(repeats)]
        check_s = _median(runs, "check_s")
        rows[str(calls)] = {
            "whole_process_s": round(_median(runs, "wall_s"), 3),
            "cpu_s": round(_median(runs, "cpu_s"), 3),
            "check_s": round(check_s, 4),
            "rss_mb": round(_median(runs, "rss_mb")),
            "check_us_per_call": round(check_s / calls * 1e6, 3),
            "check_cpu_us_per_call_one_worker": round(check_cpu_per_call(path, repeats), 3),
            "valid": runs[0]["valid"], "engine": runs[0]["engine"],
            "runs_wall_s": [round(r["wall_s"], 3) for r in runs],
            "porcupine_check_s_process_s_rss_mb": PORCUPINE.get(calls),
        }
    out: dict = {"keys": 100, "processes": 50, "info": 0.05,
                 "interpreter_s": round(interpreter_s(env, repeats), 3), "sizes": rows}
    for field in ("check_us_per_call", "check_cpu_us_per_call_one_worker"):
        per_call = [r[field] for r in rows.values()]
        out[f"{field}_spread"] = round(max(per_call) / min(per_call) - 1, 3)
    if corrupt:
        path = history_file(workdir, sizes[min(1, len(sizes) - 1)], corrupt)
        runs = [whole_process(path, env) for _ in range(repeats)]
        out["corrupted"] = {"calls": int(path.stem.split("-")[1]), "corrupt_reads": corrupt,
                            "whole_process_s": round(_median(runs, "wall_s"), 3),
                            "check_s": round(_median(runs, "check_s"), 4),
                            "valid": runs[0]["valid"]}
    return out


def bench_file(path: Path, repeats: int, engine: str) -> dict:
    parse_s, history = _min_time(lambda: load_calls(path), 3)
    calls = history.calls
    check_s, result = _min_time(lambda: check(calls, engine=engine, workers=1), repeats)
    cpu_s, _ = _min_time(lambda: check(calls, engine=engine, workers=1), repeats,
                         time.process_time)
    verdict_s, _ = _min_time(lambda: check(calls, engine=engine, workers=1,
                                           describe_failure=False), repeats)
    return {"parse_s": round(parse_s, 6), "check_s": round(check_s, 6),
            "check_cpu_s": round(cpu_s, 6), "verdict_s": round(verdict_s, 6),
            "valid": result["valid"], "undecided": result.get("undecided", [])}


def bench_keys_alone(path: Path, repeats: int, engine: str) -> dict:
    calls = load_calls(path).calls
    out = {}
    for key in sorted({c.key for c in calls}, key=lambda k: (len(k), k)):
        mine = [c for c in calls if c.key == key]
        seconds, result = _min_time(lambda mine=mine: check(mine, "kv", time_limit=10,
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

        def total(field: str, rows: dict = etcd) -> float:
            return round(sum(r[field] for r in rows.values()), 4)

        def median(field: str, rows: dict = etcd) -> float:
            return round(statistics.median(r[field] for r in rows.values()), 6)

        out[engine] = {
            "etcd": {"files": len(etcd), "total_check_s": total("check_s"),
                     "median_check_s": median("check_s"),
                     "total_check_cpu_s": total("check_cpu_s"),
                     "median_check_cpu_s": median("check_cpu_s"),
                     "total_verdict_s": total("verdict_s"),
                     "median_verdict_s": median("verdict_s"),
                     "total_parse_s": total("parse_s"),
                     "slowest": dict(sorted(((n, r["check_s"]) for n, r in etcd.items()),
                                            key=lambda x: -x[1])[:5]),
                     "invalid": sum(r["valid"] is False for r in etcd.values())},
            "kv": {name: {"check_s": r["check_s"], "check_cpu_s": r["check_cpu_s"],
                          "verdict_s": r["verdict_s"], "valid": r["valid"]}
                   for name, r in kv.items()},
            "c50_keys_alone": {name: {"max_check_s": max(r["check_s"] for r in keys.values()),
                                      "undecided": [k for k, r in keys.items()
                                                    if r["valid"] == "unknown"]}
                               for name, keys in alone.items()},
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
        out["msgspec_records_s"] = round(_min_time(lambda: _DECODER.decode_lines(data),
                                                   repeats)[0], 4)
        try:
            import orjson
        except ImportError:
            out["orjson"] = "not installed (pip install -e '.[bench]')"
            return out
        out["orjson_dicts_s"] = round(_min_time(lambda: [orjson.loads(x) for x in lines],
                                                repeats)[0], 4)
    big = b'{"v": 123456789012345678901234567890}'
    out["orjson_keeps_big_ints"] = orjson.loads(big)["v"] == msgspec.json.decode(big)["v"]
    return out


# Node event files like a long run's (agreement part): each node applies the log's entries in
# order, restarting every RESTART_EVERY entries (nodes apart) from its last snapshot, taken
# every SNAPSHOT_EVERY entries, so it writes more apply events than the log has entries; each
# life starts with the log it recovered, and stores the entries it goes on to apply in
# batches of STORE_BATCH (the `recovered` and `stored` events commit_safety.py reads). n1
# leads (a `role` event each life) and answers a read after each entry it applies (the `read`
# events read_safety.py checks: a run's reads are about half its operations).
EVENT_NODES, RESTART_EVERY, SNAPSHOT_EVERY, STORE_BATCH = 5, 7_000, 1_000, 10
_AGREEMENT = """
import json, sys
from splitbrain.checker.agreement import Agreement
agreement = Agreement()
for path in sys.argv[1:]:
    agreement.add(path.split("/")[-2], path)
result = agreement.result()
print(json.dumps({"valid": result["valid"], "committed": result["committed"],
                  "apply_events": sum(n.applied for n in agreement.nodes),
                  "read_safety": result["read_safety"]}))
"""


def _term(index: int) -> int:
    return 1 + index // 50_000


def _runs(first: int, last: int) -> str:
    """The `terms` of entries first..last: where each run of one term begins."""
    return json.dumps([[i, _term(i)] for i in range(first, last + 1)
                       if i == first or _term(i) != _term(i - 1)])


def events_dir(workdir: Path, entries: int) -> Path:
    """Five nodes' events.jsonl over a log of `entries` (made once, then reused)."""
    root = workdir / f"events-v3-{entries}"
    if (root / "done").exists():
        return root
    for n in range(1, EVENT_NODES + 1):
        path = root / f"n{n}" / "events.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as out:
            index = stored = 0
            while index < entries:
                out.write(f'{{"time":{index},"event":"start","node":"n{n}"}}\n')
                index -= index % SNAPSHOT_EVERY  # from the last snapshot
                snap = (f',"snapshot":{index},"snapshot_term":{_term(index)}' if index else "")
                out.write(f'{{"time":{index},"event":"recovered","term":1,"vote":null,'
                          f'"commit":{index},"last":{stored},'
                          f'"terms":{_runs(index + 1, stored)}{snap}}}\n')
                if n == 1:
                    out.write(f'{{"time":{index},"event":"role","role":"leader",'
                              f'"term":{_term(index)}}}\n')
                end = min(entries, index + RESTART_EVERY + 997 * n)
                for i in range(index + 1, end + 1):
                    if i > stored:
                        stored = min(end, i + STORE_BATCH - 1)
                        out.write(f'{{"time":{i},"event":"stored","first":{i},'
                                  f'"last":{stored},"terms":{_runs(i, stored)}}}\n')
                    crc = i * 2_654_435_761 % 2**32
                    out.write(f'{{"time":{i},"event":"apply","index":{i},"term":{_term(i)},'
                              f'"id":"c{i % 20}:{i // 20 + 1}","crc":{crc}}}\n')
                    if n == 1:
                        out.write(f'{{"time":{i},"event":"read","asked":{i},'
                                  f'"term":{_term(i)},"index":{i}}}\n')
                index = end
    (root / "done").touch()
    return root


def bench_agreement(sizes: list[int], repeats: int, workdir: Path) -> dict:
    """The log-agreement check (`splitbrain check` reads node events so) in a fresh process:
    wall time and peak RSS against the apply events read."""
    env = _child_env(workdir)
    rows = {}
    for entries in sizes:
        root = events_dir(workdir, entries)
        files = sorted(str(p) for p in root.glob("n*/events.jsonl"))
        argv = [sys.executable, "-c", _AGREEMENT, *files]
        _timed_child(argv, env)  # warm: bytecode cached, the files in the page cache
        runs = [_timed_child(argv, env) for _ in range(repeats)]
        wall = statistics.median(r[0] for r in runs)
        said = json.loads(runs[0][3])
        rows[str(entries)] = {
            **said, "events_mb": round(sum(map(os.path.getsize, files)) / 2**20),
            "whole_process_s": round(wall, 3),
            "us_per_event": round(wall / said["apply_events"] * 1e6, 3),
            "rss_mb": round(statistics.median(r[1].ru_maxrss for r in runs) / 1024)}
    return {"nodes": EVENT_NODES, "restart_every": RESTART_EVERY,
            "snapshot_every": SNAPSHOT_EVERY, "log_entries": rows}


def must_show(report: dict) -> list[dict]:
    """Issue 13's goals, each with its value and pass/fail; items whose part was skipped are
    left out."""
    items: list[tuple[str, float | None, str]] = []
    scale = report.get("scale", {})
    rows = scale.get("sizes", {})
    if "100000" in rows:
        items += [("100k_whole_process_s", rows["100000"]["whole_process_s"], "s"),
                  ("100k_check_s", rows["100000"]["check_s"], "s")]
    if "1000000" in rows:
        items += [("1M_whole_process_s", rows["1000000"]["whole_process_s"], "s"),
                  ("1M_rss_mb", rows["1000000"]["rss_mb"], "MB")]
    if "10000" in rows and "1000000" in rows:
        spread = max(scale["check_us_per_call_spread"],
                     scale["check_cpu_us_per_call_one_worker_spread"])
        items.append(("check_us_per_call_spread", spread, "(max/min - 1, 10k to 1M)"))
    corpus = report.get("corpus", {}).get(ENGINES[0])
    if corpus:
        items += [("etcd_total_check_s", corpus["etcd"]["total_check_s"], "s"),
                  ("etcd_median_check_s", corpus["etcd"]["median_check_s"], "s"),
                  ("c50-ok_check_s", corpus["kv"]["c50-ok"]["check_s"], "s"),
                  ("c50-bad_check_s", corpus["kv"]["c50-bad"]["check_s"], "s")]
    out = [{"item": name, "value": value, "goal": f"<= {GOALS[name]} {unit}",
            "pass": value <= GOALS[name]} for name, value, unit in items]
    if corpus:
        undecided = [k for v in corpus["c50_keys_alone"].values() for k in v["undecided"]]
        out.append({"item": "c50_every_key_decided", "value": not undecided,
                    "goal": "every key of c50-ok and c50-bad decided", "pass": not undecided})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--corpus-repeats", type=int, default=20,
                        help="checks per corpus file (the minimum is kept)")
    parser.add_argument("--corrupt", type=int, default=1, help="reads corrupted in one history")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/splitbrain-bench"))
    parser.add_argument("--agreement-sizes", default="20000,200000,1000000",
                        help="log entries of the node event files (agreement part)")
    parser.add_argument("--skip", default="",
                        help="comma-separated: scale, corpus, parsers, agreement")
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
        report["corpus"] = bench_corpus(args.corpus, args.corpus_repeats)
    if "parsers" not in skip:
        report["parsers"] = bench_parsers(history_file(args.workdir, sizes[0]), args.repeats)
    if "agreement" not in skip:
        report["agreement"] = bench_agreement(
            [int(s) for s in args.agreement_sizes.split(",")], args.repeats, args.workdir)
    report["machine"]["load_average_after"] = os.getloadavg()
    report = {"must_show": must_show(report), **report}
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How fast splitbrain catches each deliberately unsafe Raft variant and each unsafe target
configuration: prints one JSON object.

    python bench/unsafe.py [--seeds 1,2,3,4,5] [--variants stale-reads,no-log-check]
                           [--extra "--nemesis-interval 0.5"] [--keep DIR]
    sudo python bench/unsafe.py --variants etcd-serializable-reads --seeds 1,2,3,4,5,6,7,8,9,10

Each variant runs `splitbrain run --nodes 5 --unsafe VARIANT` (or, for a configuration of
another target, `splitbrain run --nodes 5`) with the arguments that provoke it
(splitbrain.testing.unsafe, as the end-to-end tests do) on every seed. Per run: the exit code
(1 = caught), the wall time of the whole run, and the time to detection: seconds since the run
started (history.jsonl `time`) of the first operation or event that makes it invalid — the
completion of the op the linearizability checker could not linearize, an acknowledged write the
log lost, or the first node event that breaks log agreement (an apply that contradicts an
earlier one, a second leader of one term). Node events carry wall-clock times: they are placed
on the run's clock by the first applies of acknowledged client writes, each of which happened
between the write's invoke and its completion.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from splitbrain.history import Call, pair_calls, read_jsonl
from splitbrain.reports.nodes import events as read_events
from splitbrain.store import RunDir
from splitbrain.testing.unsafe import CONFIGURATIONS, PROVOCATIONS

KNOWN = {**PROVOCATIONS, **CONFIGURATIONS}

RUN_TIMEOUT = 300  # seconds for one whole run


def node_events(run: RunDir) -> dict[str, list[dict[str, Any]]]:
    return {node: list(read_events(run, node)) for node in run.node_names()}


def clock_offset(events: dict[str, list[dict[str, Any]]], calls: list[Call]) -> float | None:
    """Wall-clock ns minus run-clock ns. The first apply of an acknowledged write (on the node
    that answered, before it answered; restarted nodes apply it again later) happened between
    the write's invoke and its completion."""
    ok = {c.request: c for c in calls if c.type == "ok" and c.request and c.end is not None}
    first: dict[str, int] = {}
    for evs in events.values():
        for e in evs:
            rid = e.get("id")
            if e.get("event") == "apply" and rid in ok:
                first[rid] = min(first.get(rid, e["time"]), e["time"])
    if not first:
        return None
    low = max(w - ok[rid].end for rid, w in first.items())  # type: ignore[operator]
    high = min(w - ok[rid].start for rid, w in first.items())
    if low <= high:
        return (low + high) / 2
    return statistics.median(w - (ok[rid].start + ok[rid].end) / 2  # type: ignore[operator]
                             for rid, w in first.items())


def violating_events(results: dict[str, Any], events: dict[str, list[dict[str, Any]]],
                     calls: list[Call]) -> list[tuple[str, float | None, int | None]]:
    """(what, run-clock ns, wall-clock ns) of each first sign of invalidity the results name."""
    found: list[tuple[str, float | None, int | None]] = []
    checkers = results.get("checkers", {})
    failure = checkers.get("linearizable", {}).get("failure") or {}
    op = failure.get("op")
    if op:
        found.append(("linearizable", op.get("end") or op.get("start"), None))
    by_request = {c.request: c for c in calls if c.request}
    for v in checkers.get("log-agreement", {}).get("violations", []):
        kind = v["kind"]
        if kind == "lost-write":
            call = by_request.get(v["request"])
            found.append((kind, call.end if call else None, None))
        elif kind in ("divergent-entry", "lost-committed-entry"):
            # The first apply at that index that contradicts an earlier one.
            applies = sorted((e["time"], e.get("term"), e.get("id")) for evs in events.values()
                             for e in evs
                             if e.get("event") == "apply" and e.get("index") == v["index"])
            first = applies[0][1:] if applies else None
            clash = [t for t, *entry in applies if tuple(entry) != first]
            found.append((kind, None, clash[0] if clash else None))
        elif kind == "two-leaders":
            times = sorted(e["time"] for n in v["nodes"] for e in events.get(n, [])
                           if e.get("event") == "role" and e.get("role") == "leader"
                           and e.get("term") == v["term"])
            found.append((kind, None, times[1] if len(times) > 1 else None))
    return found


def detection(run: RunDir) -> dict[str, Any]:
    results = json.loads(run.results.read_text())
    calls = pair_calls(read_jsonl(run.history).ops)
    events = node_events(run)
    offset = clock_offset(events, calls)
    best: tuple[float, str] | None = None
    for what, run_ns, wall_ns in violating_events(results, events, calls):
        if run_ns is None and wall_ns is not None and offset is not None:
            run_ns = wall_ns - offset
        if run_ns is not None and (best is None or run_ns < best[0]):
            best = (run_ns, what)
    return {
        "valid": results.get("valid"),
        "cause": results.get("cause"),
        "detect_s": round(best[0] / 1e9, 3) if best else None,
        "detected_by": best[1] if best else None,
    }


def run_one(variant: str, seed: int, args: list[str], base: Path) -> dict[str, Any]:
    out = base / f"{variant}-{seed}"
    unsafe = ["--unsafe", variant] if variant in PROVOCATIONS else []
    cmd = [sys.executable, "-m", "splitbrain", "run", "--nodes", "5", *unsafe, *args,
           "--seed", str(seed), "--out", str(out)]
    began = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    record: dict[str, Any] = {"seed": seed, "exit": proc.returncode, "caught": proc.returncode == 1,
                              "wall_s": round(time.monotonic() - began, 1)}
    runs = sorted(out.glob("*/*/results.json"))
    if runs:
        record.update(detection(RunDir(runs[-1].parent)))
        record["run"] = str(runs[-1].parent)  # gone after the bench unless --keep
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--variants", default=",".join(PROVOCATIONS),
                        help=f"any of {', '.join(KNOWN)}")
    parser.add_argument("--extra", default="",
                        help="more `splitbrain run` arguments, after the variant's (they win)")
    parser.add_argument("--keep", default=None, help="keep the run directories here")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in KNOWN]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r} (known: {', '.join(KNOWN)})")
    extra = shlex.split(args.extra)
    report: dict[str, Any] = {"nodes": 5, "variants": {}}
    with tempfile.TemporaryDirectory(prefix="bench-unsafe-") as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        for variant in variants:
            run_args = [*KNOWN[variant].args, *extra]
            runs = [run_one(variant, seed, run_args, base) for seed in seeds]
            detect = [r["detect_s"] for r in runs if r.get("caught") and r.get("detect_s")]
            report["variants"][variant] = {
                "args": ["--nodes", "5", *(["--unsafe", variant] if variant in PROVOCATIONS
                                           else []), *run_args],
                "caught": f"{sum(r['caught'] for r in runs)}/{len(runs)}",
                "detect_s_median": statistics.median(detect) if detect else None,
                "runs": runs,
            }
            print(json.dumps({variant: report["variants"][variant]["caught"]}), file=sys.stderr)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

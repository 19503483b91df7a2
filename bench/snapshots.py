"""What snapshots bound in a long run of the bundled Raft: prints one JSON object.

    python bench/snapshots.py [--time-limit 600] [--snapshot-every 1000] [--sample 60]
                              [--nemesis all] [--seed 1] [--out DIR]

Runs `splitbrain run --nemesis all --node-arg=--snapshot-every=N` (0: without snapshots, to
compare) and,
every `--sample` seconds while it runs, records per node: its RSS (the node processes of this
run, found by their --data-dir), the bytes of raft.wal holding records (the file is
preallocated with zeros: its size is in `wal_file`), the snapshot file's size, the bytes and
apply events of events.jsonl, and how long the log-agreement checker takes over the events
written so far (checker.agreement, as `splitbrain check` reads them). Then the
run's exit code, verdict and check time from its results.json. Nodes restart (kills, crashes,
power loss), so a sample may miss a node that is down.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import psutil

from splitbrain.checker.agreement import Agreement
from splitbrain.history import HistoryError
from splitbrain.store import RunDir


def run_dir(base: Path, started: float) -> RunDir | None:
    runs = [p.parent for p in base.glob("*/*/config.json") if p.stat().st_mtime >= started]
    return RunDir(max(runs)) if runs else None


def node_rss(run: RunDir) -> dict[str, int]:
    """RSS of this run's node processes, by node (found by their --data-dir)."""
    out = {}
    for proc in psutil.process_iter(["cmdline", "memory_info"]):
        cmd = proc.info["cmdline"] or []
        if "node" in cmd and "--data-dir" in cmd and str(run.path) in " ".join(cmd):
            out[cmd[cmd.index("--id") + 1]] = proc.info["memory_info"].rss
    return out


def used(path: Path) -> int:
    """Bytes of a preallocated file before its trailing zeros."""
    try:
        return len(path.read_bytes().rstrip(b"\0"))
    except OSError:
        return 0


def sample(run: RunDir, nodes: list[str], t0: float) -> dict:
    rss = node_rss(run)
    per_node = {}
    events = []
    for node in nodes:
        data = run.node_data(node)
        path = run.node_events(node)
        entry = {"rss": rss.get(node), "wal": used(data / "raft.wal"),
                 "wal_file": (data / "raft.wal").stat().st_size
                 if (data / "raft.wal").exists() else 0,
                 "snapshot": (data / "snapshot").stat().st_size
                 if (data / "snapshot").exists() else 0,
                 "events_bytes": path.stat().st_size if path.exists() else 0}
        per_node[node] = entry
        events.append((node, path))
    start = time.perf_counter()
    try:
        agreement = Agreement()
        for node, path in events:
            if path.exists():
                agreement.add(node, path)
        verdict = agreement.result()["valid"]
        applies = {n.node: n.applied for n in agreement.nodes}
    except HistoryError as exc:  # a line being written: try at the next sample
        verdict, applies = f"unreadable: {exc}", {}
    check = time.perf_counter() - start
    for node, count in applies.items():
        per_node[node]["apply_events"] = count
    return {"t": round(time.monotonic() - t0, 1), "agreement_check_s": round(check, 3),
            "agreement": verdict, "nodes": per_node}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--time-limit", type=float, default=600)
    p.add_argument("--snapshot-every", type=int, default=1000)
    p.add_argument("--sample", type=float, default=60)
    p.add_argument("--nemesis", default="all")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("runs-bench-snapshots"))
    args = p.parse_args()
    argv = [sys.executable, "-m", "splitbrain", "run", "--nemesis", args.nemesis,
            "--time-limit", f"{args.time_limit:g}", "--seed", str(args.seed),
            "--out", str(args.out)]
    argv.append(f"--node-arg=--snapshot-every={args.snapshot_every}")
    started = time.time() - 1
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples = []
    run = None
    try:
        next_at = t0 + args.sample
        while proc.poll() is None:
            time.sleep(1)
            run = run or run_dir(args.out, started)
            if run is not None and time.monotonic() >= next_at:
                nodes = json.loads(run.config.read_text())["nodes"]
                samples.append(sample(run, nodes, t0))
                print(json.dumps(samples[-1]), file=sys.stderr, flush=True)
                next_at += args.sample
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait()
    run = run or run_dir(args.out, started)
    results = json.loads(run.results.read_text()) if run and run.results.exists() else {}
    print(json.dumps({
        "argv": ["splitbrain", *argv[3:]],
        "exit_code": proc.returncode,
        "valid": results.get("valid"),
        "cause": results.get("cause"),
        "check_time_s": results.get("check_time_s"),
        "wall_s": round(time.monotonic() - t0, 1),
        "run": str(run.path) if run else None,
        "samples": samples,
    }, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

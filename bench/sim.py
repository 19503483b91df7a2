"""Benchmark of `splitbrain sim`: prints one JSON object.

    python bench/sim.py [--seeds 20] [--jobs 2] [--first 1] [--replay 0] [--unsafe]
                        [--budget 60] [--keep DIR]

- speed, for 3 and 5 nodes (every other setting drawn per seed, as `splitbrain sim --seeds`
  does): seeds/s on one process and on `--jobs` processes, simulated seconds per wall second,
  and per CPU second of the simulating processes (what the machine's other load cannot skew);
  the seeds of the correct Raft that failed (false alarms) are listed;
- `--replay K`: K seeds simulated here, then each replayed in a process with another
  PYTHONHASHSEED; how many were byte-identical (history, events, node logs);
- `--unsafe`: for each deliberately broken Raft, `splitbrain sim --seeds` with the default
  swarm from `--first`, stopped at the first failing seed or after `--budget` wall seconds:
  seeds to the first failure, wall seconds, and what caught it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from splitbrain.config import UNSAFE_FLAGS, RunConfig
from splitbrain.sim.command import CPU_BUDGET, first_difference
from splitbrain.sim.config import SimConfig
from splitbrain.sim.explore import SeedResult, explore
from splitbrain.sim.simulate import simulate
from splitbrain.sim.swarm import draw
from splitbrain.store import RunDir


def speed(out: Path, nodes: int, first: int, seeds: int, jobs: int) -> dict[str, Any]:
    base = RunConfig(out=str(out), name=f"speed-{nodes}-{jobs}")
    cpu = time.process_time()
    children = os.times()
    began = time.perf_counter()
    results: list[SeedResult] = list(explore(range(first, first + seeds), {"nodes": nodes}, base,
                                             jobs=jobs, cpu_budget=CPU_BUDGET))  # fmt: skip
    wall = time.perf_counter() - began
    after = os.times()
    cpu = (time.process_time() - cpu) + (after.children_user + after.children_system
                                         - children.children_user - children.children_system)
    sim = sum(r.sim_seconds for r in results)
    return {
        "nodes": nodes, "jobs": jobs, "seeds": len(results),
        "seeds_per_s": round(len(results) / wall, 3),
        "sim_s_per_wall_s": round(sim / wall, 2),
        "sim_s_per_cpu_s": round(sim / cpu, 2) if cpu else None,
        "wall_s": round(wall, 1), "simulated_s": round(sim, 1),
        "false_alarms": [{"seed": r.seed, "kind": r.kind, "run": r.run}
                         for r in results if r.valid is not True],
    }  # fmt: skip


def _replay(path: str) -> str | None:
    """In a process with another hash seed: replay one run; the first difference or None."""
    run = RunDir(Path(path))
    config = SimConfig.from_json(run.read_json(run.config))
    again = RunDir(Path(tempfile.mkdtemp(prefix="replay-", dir=run.path.parent)))
    (again.path / "nodes").mkdir()
    simulate(config, again)
    return first_difference(run, again)


def replays(out: Path, first: int, count: int, jobs: int) -> dict[str, Any]:
    dirs = []
    for seed in range(first, first + count):
        run = RunDir(out / "replay" / f"seed{seed}")
        (run.path / "nodes").mkdir(parents=True)
        simulate(draw(seed, {}, RunConfig(out=str(out))), run)
        dirs.append(str(run.path))
    os.environ["PYTHONHASHSEED"] = str(first + 7919)  # the replaying processes hash otherwise
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        differences = pool.map(_replay, dirs)
    failed = [{"run": d, "difference": x} for d, x in zip(dirs, differences, strict=True) if x]
    return {"seeds": count, "byte_identical": count - len(failed), "differing": failed}


def unsafe(out: Path, first: int, budget: float, jobs: int) -> list[dict[str, Any]]:
    rows = []
    for variant in UNSAFE_FLAGS:
        base = RunConfig(out=str(out), name=f"unsafe-{variant}", unsafe=(variant,))
        began = time.perf_counter()
        row: dict[str, Any] = {"variant": variant, "caught": False}
        seen = 0
        results = explore(range(first, first + 100_000), {}, base, jobs=jobs,
                          cpu_budget=CPU_BUDGET)
        try:
            for result in results:
                seen += 1
                if result.valid is False:
                    row.update(caught=True, seed=result.seed, kind=result.kind, run=result.run)
                    break
                if time.perf_counter() - began > budget:
                    break
        finally:
            results.close()
        row.update(seeds=seen, wall_s=round(time.perf_counter() - began, 1))
        rows.append(row)
    return rows


def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="splitbrain-bench-sim-") as tmp:
        out = Path(args.keep or tmp)
        result: dict[str, Any] = {"benchmark": "sim", "first_seed": args.first}
        result["speed"] = [speed(out, nodes, args.first, args.seeds, jobs)
                           for nodes in (3, 5) for jobs in sorted({1, args.jobs})]  # fmt: skip
        if args.replay:
            result["replay"] = replays(out, args.first, args.replay, args.jobs)
        if args.unsafe:
            result["unsafe"] = unsafe(out, args.first, args.budget, args.jobs)
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                         "load_avg_1m": round(os.getloadavg()[0], 2)}  # fmt: skip
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds per speed measurement")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--first", type=int, default=1, help="first seed")
    parser.add_argument("--replay", type=int, default=0, metavar="K", help="seeds to replay")
    parser.add_argument("--unsafe", action="store_true", help="time to catch each unsafe variant")
    parser.add_argument("--budget", type=float, default=60.0, help="wall seconds per variant")
    parser.add_argument("--keep", help="keep run directories here (default: a temp dir)")
    json.dump(main(parser.parse_args()), sys.stdout, indent=2)
    print()

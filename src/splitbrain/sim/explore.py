"""Many seeds in parallel: each simulated in a scratch directory, kept only if it failed.

    for result in explore(seeds, pinned, base, jobs=2): ...     # SeedResult, as they finish

Each worker process simulates one seed at a time (swarm.draw, simulate), checks it with
`check_run`, and either deletes the scratch run directory (valid) or moves it to
`<out>/<name>/<timestamp>-seed<S>` and renders its report (invalid, unknown, could not run).
The failure kind names what caught it: the checker, and for log agreement the first violation
kind ("log-agreement:divergent-entry"). Shrinking keeps a failure only if its kind stays.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from splitbrain.checker.command import check_run
from splitbrain.cluster.lifeline import set_parent_death_signal
from splitbrain.config import RunConfig
from splitbrain.sim.config import SimConfig
from splitbrain.sim.simulate import Simulated, simulate
from splitbrain.sim.swarm import draw
from splitbrain.store import RunDir, timestamp

SCRATCH = ".sim-scratch"  # below the runs base: moving a kept run is a rename


@dataclass(frozen=True)
class SeedResult:
    seed: int
    valid: bool | str | None  # True, False, "unknown"; None: could not run
    kind: str | None  # the failure kind (None if valid)
    command: str  # reproduces it
    run: str | None  # the kept run directory (failures only)
    sim_seconds: float
    wall_seconds: float
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def failure_kind(results: dict[str, Any]) -> str | None:
    """What made a run invalid (or unknown): the first such checker, with detail."""
    if results.get("valid") is True:
        return None
    worst = results.get("valid")
    for name, result in results.get("checkers", {}).items():
        if result.get("valid") != worst:
            continue
        violations = result.get("violations") or []
        if name == "log-agreement" and violations:
            return f"{name}:{violations[0].get('kind')}"
        return name if worst is False else f"unknown:{name}"
    return "unknown"


def simulate_and_check(config: SimConfig, run: RunDir, cpu_budget: float | None = None
                       ) -> tuple[dict[str, Any], Simulated]:  # fmt: skip
    """Simulate into `run`, then run every checker (results.json has the sim's warnings)."""
    simulated = simulate(config, run, cpu_budget=cpu_budget)
    results = check_run(run, time_limit=config.run.check_time_limit)
    if simulated.warnings:
        results["warnings"] = [*simulated.warnings, *results.get("warnings", [])]
        run.write_json(run.results, results)
    return results, simulated


def run_seed(config: SimConfig, base: Path, name: str, cpu_budget: float | None = None
             ) -> SeedResult:  # fmt: skip
    """Simulate and check one configuration in a scratch directory below `base`; keep it as
    `base/name/<timestamp>-seed<S>` with its report if it did not pass."""
    from splitbrain.reports import render_report

    began = time.perf_counter()
    scratch = base / SCRATCH
    scratch.mkdir(parents=True, exist_ok=True)
    run = RunDir(Path(tempfile.mkdtemp(prefix=f"seed{config.seed}-", dir=scratch)))
    (run.path / "nodes").mkdir()
    sim_seconds = 0.0
    try:
        results, simulated = simulate_and_check(config, run, cpu_budget)
        valid, kind = results["valid"], failure_kind(results)
        warnings = tuple(results.get("warnings", ()))
        sim_seconds = simulated.sim_seconds
    except (Exception, SystemExit):  # SystemExit too: it would end a pool worker, and its seed
        # would never come back (the exploration would wait for it forever)
        (run.path / "harness-error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        valid, kind, warnings = None, "could-not-run", ()
    if valid is True:
        shutil.rmtree(run.path, ignore_errors=True)
        kept = None
    else:
        dest = base / name / f"{timestamp()}-seed{config.seed}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(run.path, dest)
        kept = str(dest)
        if valid is not None:
            render_report(RunDir(dest))
    return SeedResult(config.seed, valid, kind, config.command(), kept, sim_seconds,
                      time.perf_counter() - began, warnings)  # fmt: skip


def _work(job: tuple[int, dict[str, Any], RunConfig, float | None]) -> SeedResult:
    seed, pinned, base_config, cpu_budget = job
    config = draw(seed, pinned, base_config)
    return run_seed(config, Path(base_config.out), base_config.run_name, cpu_budget)


def explore(seeds: Iterable[int], pinned: dict[str, Any], base: RunConfig, *, jobs: int,
            cpu_budget: float | None = None) -> Iterator[SeedResult]:  # fmt: skip
    """SeedResults as the seeds finish (not in seed order). Closing the iterator early stops
    the workers (seeds in progress are abandoned, their scratch directories removed)."""
    jobs_iter = ((s, pinned, base, cpu_budget) for s in seeds)
    scratch = Path(base.out) / SCRATCH
    if jobs <= 1:
        try:
            for job in jobs_iter:
                yield _work(job)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return
    ctx = multiprocessing.get_context("fork")
    # No maxtasksperchild: once a worker has been replaced, CPython 3.11's Pool deadlocks in
    # terminate() and close()+join() (`--seeds 300` on 2 processes never ended).
    pool = ctx.Pool(jobs, initializer=set_parent_death_signal)
    try:
        yield from pool.imap_unordered(_work, jobs_iter)
    finally:
        pool.terminate()
        pool.join()
        shutil.rmtree(scratch, ignore_errors=True)

"""Shrinking: from a failing simulation, a smaller one that fails the same way.

    smaller, tried = shrink(config, kind, scratch=Path(...), budget=60.0, jobs=2)

The failing seed's faults are made explicit (the plans its schedule drew and applied), then
greedy passes try smaller candidates — a shorter run, fewer clients, fewer faults (halves,
then one by one), shorter faults, a lower rate — each re-simulated deterministically in a scratch
directory and kept if it fails with the same failure kind (explore.failure_kind). Passes repeat
until a whole round keeps nothing, or the wall-clock budget is spent. Candidates of one step
run in parallel on `jobs` processes; the first that fails, in candidate order, is kept, so the
result does not depend on which process finished first.

A candidate is one seed's world with less in it: its network delays and timers are not the
original's, so a failure can vanish in a candidate and reappear in a smaller one; only
failures that still happen are kept.
"""

from __future__ import annotations

import itertools
import multiprocessing
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from splitbrain.cluster.lifeline import set_parent_death_signal
from splitbrain.nemesis.schedule import Plan
from splitbrain.run import schedule
from splitbrain.sim.config import SimConfig
from splitbrain.store import RunDir

MIN_TIME_LIMIT = 0.2  # seconds: shorter runs barely let a cluster elect a leader
MIN_HOLD = 0.005  # seconds a fault stays in force, at least
MIN_RATE = 5.0


def seeded_plans(config: SimConfig) -> tuple[Plan, ...]:
    """The plans of the seed's schedule (run.schedule) that start within the run."""
    if config.plans is not None:
        return config.plans
    if not config.run.nemesis:
        return ()
    limit = config.run.time_limit
    return tuple(itertools.takewhile(lambda plan: plan.start < limit, schedule(config.run)))


def candidates(config: SimConfig) -> Iterator[tuple[str, SimConfig]]:
    """Smaller variants of `config`, the biggest reductions first: (what changed, config)."""
    rc = config.run
    for factor in (0.5, 0.75):
        limit = round(rc.time_limit * factor, 3)
        if limit >= MIN_TIME_LIMIT:
            shorter = config.replace_run(time_limit=limit)
            if config.plans is not None:
                shorter = replace(shorter, plans=tuple(p for p in config.plans if p.start < limit))
            yield f"time limit {limit:g} s", shorter
    for concurrency in sorted({rc.concurrency // 2, rc.concurrency - 1}):
        if 1 <= concurrency < rc.concurrency:
            yield f"{concurrency} clients", config.replace_run(concurrency=concurrency)
    plans = config.plans or ()  # seeded faults (None) are not changed one by one
    chunk = len(plans) // 2
    while chunk >= 1:
        for first in range(0, len(plans), chunk):
            kept = plans[:first] + plans[first + chunk :]
            yield f"without faults {first + 1}..{first + chunk}", replace(config, plans=kept)
        chunk //= 2
    for i, plan in enumerate(plans):
        hold = plan.stop - plan.start
        if hold >= 2 * MIN_HOLD:
            shorter = replace(plan, stop=round(plan.start + hold / 2, 6))
            yield (f"fault {i + 1} held {hold / 2:g} s",
                   replace(config, plans=(*plans[:i], shorter, *plans[i + 1 :])))  # fmt: skip
    if rc.rate > MIN_RATE or rc.rate == 0:
        rate = max(MIN_RATE, rc.rate / 2) if rc.rate else 100.0
        yield f"rate {rate:g}/s", config.replace_run(rate=rate)


def _fails(job: tuple[SimConfig, str, str, float | None]) -> bool:
    """Does the configuration fail with this kind? (Simulated in a scratch dir, then removed.)"""
    from splitbrain.sim.explore import failure_kind, simulate_and_check

    config, kind, scratch, cpu_budget = job
    path = Path(tempfile.mkdtemp(prefix="shrink-", dir=scratch))
    (path / "nodes").mkdir()
    try:
        results, _ = simulate_and_check(config, RunDir(path), cpu_budget)
        return failure_kind(results) == kind
    except Exception:
        return False
    finally:
        shutil.rmtree(path, ignore_errors=True)


def shrink(config: SimConfig, kind: str, *, scratch: Path, budget: float, jobs: int = 1,
           cpu_budget: float | None = None, say: Callable[[str], None] = lambda _: None
           ) -> tuple[SimConfig, int]:  # fmt: skip
    """The smallest configuration found that still fails with `kind`, and how many
    candidates were simulated. `config` itself must fail with `kind`. Candidates run without
    the original's step limit (their worlds differ), within `cpu_budget` each."""
    deadline = time.monotonic() + budget
    scratch.mkdir(parents=True, exist_ok=True)
    ctx = multiprocessing.get_context("fork")
    pool = ctx.Pool(jobs, initializer=set_parent_death_signal) if jobs > 1 else None
    tried = 0

    def first_failing(batch: list[tuple[str, SimConfig]]) -> tuple[str, SimConfig] | None:
        nonlocal tried
        tried += len(batch)
        jobs_ = [(replace(c, stop_after=None), kind, str(scratch), cpu_budget) for _, c in batch]
        results = pool.map(_fails, jobs_) if pool else [_fails(j) for j in jobs_]
        return next((b for b, ok in zip(batch, results, strict=True) if ok), None)

    try:
        current = config
        explicit = replace(config, plans=seeded_plans(config))
        if config.plans is None and first_failing([("explicit faults", explicit)]):
            current = explicit
        improved = True
        while improved and time.monotonic() < deadline:
            improved = False
            options = list(candidates(current))
            for start in range(0, len(options), max(1, jobs)):
                if time.monotonic() >= deadline:
                    break
                found = first_failing(options[start : start + max(1, jobs)])
                if found is not None:
                    say(f"  kept: {found[0]}")
                    current, improved = found[1], True
                    break
        return current, tried
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()

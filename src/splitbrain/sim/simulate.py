"""One simulation: a SimConfig in, a run directory out (the same files `splitbrain run` writes).

    result = simulate(config, run_dir)      # history.jsonl, nodes/*, invariants.json, config.json

The run is `run.drive` — the interpreter, the clients and the nemesis of a real run — on a
SimCluster in a World (world.py) seeded by the config's seed. Checking, the report and the
verdict are run.py's (`finish`), or, when exploring many seeds, `check_run` alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from splitbrain.history import HistoryWriter
from splitbrain.raft.wal import FILE_NAME
from splitbrain.run import drive, recovery_warnings
from splitbrain.sim.cluster import SimCluster
from splitbrain.sim.config import SimConfig
from splitbrain.sim.invariants import Invariants
from splitbrain.sim.loop import SimulationStopped
from splitbrain.sim.world import EPOCH_NS, World, iso
from splitbrain.store import RunDir

# Virtual seconds for the recovery wait and the final reads: a healed cluster of the bundled
# Raft elects in well under a second; a broken one would only burn simulated time waiting.
PHASE_TIMEOUT = 5.0


@dataclass(frozen=True)
class Simulated:
    """What a simulation did, besides the files it wrote."""

    warnings: list[str]  # for results.json: recovery trouble, errors nobody handled
    sim_seconds: float  # virtual time simulated
    wall_seconds: float


def simulate(config: SimConfig, run: RunDir, *, cpu_budget: float | None = None) -> Simulated:
    """Simulate `config` into the (new, empty) run directory `run`. Raises on a harness
    failure; config.json is written first, so a failed simulation can still be replayed.

    A simulation that uses more than `cpu_budget` CPU seconds is stopped where it is and
    checked as far as it got (a warning says so); config.json then records how many loop
    steps it ran (`stop_after`), so that a replay stops at the same step."""
    began = time.perf_counter()
    world = World(config.seed, config.physics)
    world.loop.limit(steps=config.stop_after,
                     cpu_seconds=cpu_budget if config.stop_after is None else None)  # fmt: skip
    rc = config.run
    run.write_json(run.config, config.to_json(clock_started=iso(EPOCH_NS)))
    warnings: list[str] = []
    cluster = SimCluster(world, run, rc.node_names, unsafe=rc.unsafe, node_args=rc.node_args,
                         seed=rc.seed)  # fmt: skip
    invariants = Invariants(cluster.disks, _wal_path, world.event_ns, lambda: world.loop.now)
    cluster.observer = invariants
    started = 0.0

    async def main() -> None:
        nonlocal started
        with HistoryWriter(run.history) as writer:
            async with cluster:
                started = world.loop.time()  # history time 0: the interpreter starts at once
                tally = await drive(rc, cluster, writer, cluster.target, plans=config.plans,
                                    recovery_timeout=PHASE_TIMEOUT, final_timeout=PHASE_TIMEOUT)
        warnings.extend(recovery_warnings(tally))

    try:
        world.run(main())
    except SimulationStopped as stop:
        config = replace(config, stop_after=stop.steps)
        warnings.append(f"sim: stopped at {stop.at:.3f} s (virtual) after {stop.steps} loop steps: "
                        "its CPU budget ran out; checked as far as it got")  # fmt: skip
    run.write_json(run.invariants, invariants.results())
    run.write_json(run.config,
                   config.to_json(clock_started=iso(EPOCH_NS + round(started * 1e9))))
    if world.errors:
        path = run.path / "sim-errors.log"
        path.write_text("\n\n".join(world.errors) + "\n", encoding="utf-8")
        warnings.append(f"sim: {len(world.errors)} error(s) no one handled: see {path.name}")
    return Simulated(warnings, world.loop.time(), time.perf_counter() - began)


def _wal_path(node: str) -> Path:
    return RunDir(Path(".")).node_data(node) / FILE_NAME

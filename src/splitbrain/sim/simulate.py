"""One simulation: a SimConfig in, a run directory out (the same files `splitbrain run` writes).

    result = simulate(config, run_dir)      # history.jsonl, nodes/*, invariants.json, config.json

The run is `run.drive` — the interpreter, the clients and the nemesis of a real run — on a
SimCluster in a World (world.py) seeded by the config's seed. Checking, the report and the
verdict are run.py's (`finish`), or, when exploring many seeds, `check_run` alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from splitbrain.history import HistoryWriter
from splitbrain.raft.wal import FILE_NAME
from splitbrain.run import drive, recovery_warnings
from splitbrain.sim.cluster import SimCluster
from splitbrain.sim.config import SimConfig
from splitbrain.sim.invariants import Invariants
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


def simulate(config: SimConfig, run: RunDir) -> Simulated:
    """Simulate `config` into the (new, empty) run directory `run`. Raises on a harness
    failure; config.json is written first, so a failed simulation can still be replayed."""
    began = time.perf_counter()
    world = World(config.seed, config.physics)
    rc = config.run
    run.write_json(run.config, config.to_json(started=iso(EPOCH_NS)))

    async def main() -> float:
        with HistoryWriter(run.history) as writer:
            cluster = SimCluster(world, run, rc.node_names, unsafe=rc.unsafe,
                                 node_args=rc.node_args, seed=rc.seed)  # fmt: skip
            invariants = Invariants(cluster.disks, _wal_path, world.clock_ns, world.loop.time)
            cluster.observer = invariants
            async with cluster:
                tally = await drive(rc, cluster, writer, plans=config.plans,
                                    recovery_timeout=PHASE_TIMEOUT, final_timeout=PHASE_TIMEOUT)
        run.write_json(run.invariants, invariants.results())
        warnings.extend(recovery_warnings(tally))
        return tally.started

    warnings: list[str] = []
    started = world.run(main())
    run.write_json(run.config, config.to_json(started=iso(EPOCH_NS + round(started * 1e9))))
    if world.errors:
        path = run.path / "sim-errors.log"
        path.write_text("\n\n".join(world.errors) + "\n", encoding="utf-8")
        warnings.append(f"sim: {len(world.errors)} error(s) no one handled: see {path.name}")
    return Simulated(warnings, world.loop.time(), time.perf_counter() - began)


def _wal_path(node: str) -> Path:
    return RunDir(Path(".")).node_data(node) / FILE_NAME

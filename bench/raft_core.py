"""Benchmark of the pure Raft core alone (no disk, no network): prints one JSON object.

    python bench/raft_core.py [--entries 30000] [--trials 200]

- throughput: three RawNodes in this process exchange their Readies directly; a leader takes
  1, 8 or 32 proposals per Ready cycle (what 1, 8 or 32 concurrent clients give the runtime).
  The runtime's budget is >= 5,000 writes/s for all three nodes on two cores, so the core should
  cost a small fraction of it;
- failover in ticks: on the simulated network, from a crash of the leader to the first
  command committed by the survivors, with election_tick 15 (150-300 ms at 10 ms ticks).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from splitbrain.raft.messages import HardState, Message
from splitbrain.raft.rawnode import Config, RawNode
from splitbrain.testing.simnet import SimNet


def throughput(batch: int, entries: int) -> float:
    ids = ("n1", "n2", "n3")
    nodes = {
        i: RawNode(Config(i, ids), hard_state=HardState(), entries=(), rng=random.Random(i))
        for i in ids
    }
    queue: list[Message] = []

    def pump() -> None:
        moved = True
        while moved:
            moved = False
            for node in nodes.values():
                if node.has_ready():
                    rd = node.ready()
                    queue.extend(rd.messages)
                    node.advance(rd)
                    moved = True
            while queue:
                msg = queue.pop()
                nodes[msg.dst].step(msg)
                moved = True

    while not any(n.status().role == "leader" for n in nodes.values()):
        for node in nodes.values():
            node.tick()
        pump()
    leader = next(n for n in nodes.values() if n.status().role == "leader")
    data = b"x" * 64
    start = time.perf_counter()
    for _ in range(entries // batch):
        for _ in range(batch):
            leader.propose(data)
        pump()
    return entries / (time.perf_counter() - start)


def failover_ticks(trials: int) -> list[int]:
    ticks = []
    for seed in range(trials):
        net = SimNet(3, seed=seed, election_tick=15)
        net.one(b"before", 3)
        net.tick(net.rng.randint(0, 15))
        net.crash(net.wait_leader())
        start = net.time
        net.one(b"after", 2, ticks=1000)
        ticks.append(net.time - start)
    return ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=30000)
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args()
    ticks = sorted(failover_ticks(args.trials))
    result = {
        "core_entries_per_s_3_nodes": {
            f"batch_{batch}": round(throughput(batch, args.entries)) for batch in (1, 8, 32)
        },
        "failover_ticks_election_tick_15": {
            "median": statistics.median(ticks),
            "p90": ticks[int(0.9 * len(ticks))],
            "max": ticks[-1],
            "trials": len(ticks),
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

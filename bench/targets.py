"""etcd beside the bundled Raft under splitbrain's own client load: prints one JSON object.

    sudo python bench/targets.py [--targets raft,etcd] [--network netns] [--duration 3]
                                 [--trials 5] [--clients 1,8,32]

Each target runs as a 3-node cluster the way `splitbrain run` starts it (cluster/cluster.py;
netns mode by default, so both see the same network: a namespace per node on a bridge) and is
driven by its own target client (targets/), the clients runs use, all in this process:
- throughput and p50/p99 latency of acknowledged operations with 1, 8 and 32 concurrent
  clients homed at the leader: write-only (put) and read-heavy (90% get, linearizable);
- failover: kill -9 of the leader -> first write acknowledged through another node, over
  `--trials` trials (the dead leader is restarted and a leader found between trials).
Election timeouts are each system's defaults: 150-300 ms for the bundled Raft, 1000 ms for etcd.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from typing import Any

from splitbrain.cluster.cluster import Cluster
from splitbrain.store import create_run
from splitbrain.targets.registry import load_target
from splitbrain.targets.target import Target

NODES = ["n1", "n2", "n3"]
MIXES = {"write-only": 1.0, "read-heavy": 0.1}  # share of writes
WARMUP = 0.3  # seconds of each measurement not counted


def quantile(values: list[float], q: float) -> float | None:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1] \
        if len(values) > 1 else (values[0] if values else None)


async def settled(cluster: Cluster, target: Target, timeout: float = 30.0) -> str:
    """Until a leader is known and a write through it is acknowledged; returns the leader."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leader = await cluster.leader()
        if leader is not None:
            client = target.client(cluster.client_addresses, leader, f"settle-{random.random()}",
                                   1.0)  # fmt: skip
            try:
                if (await client.invoke("put", "settle", "x")).type == "ok":
                    return leader
            finally:
                await client.close()
        await asyncio.sleep(0.05)
    raise TimeoutError("no leader acknowledged a write within 30 s")


async def throughput(cluster: Cluster, target: Target, mix: str, clients: int,
                     duration: float) -> dict[str, Any]:  # fmt: skip
    leader = await settled(cluster, target)
    share = MIXES[mix]
    conns = [target.client(cluster.client_addresses, leader, f"{mix}-{clients}-{i}", 2.0)
             for i in range(clients)]  # fmt: skip
    latencies: list[float] = []
    counts = {"ok": 0, "fail": 0, "info": 0, "writes_ok": 0}
    begin = time.perf_counter() + WARMUP
    end = begin + duration

    async def work(i: int) -> None:
        rng = random.Random(i)
        while (start := time.perf_counter()) < end:
            write = rng.random() < share
            key = f"k{rng.randrange(100)}"
            out = await (conns[i].invoke("put", key, f"v{i}") if write
                         else conns[i].invoke("get", key, None))  # fmt: skip
            if start < begin:
                continue
            counts[out.type] += 1
            if out.type == "ok":
                latencies.append(time.perf_counter() - start)
                counts["writes_ok"] += write

    await asyncio.gather(*(work(i) for i in range(clients)))
    for c in conns:
        await c.close()
    p50, p99 = quantile(latencies, 0.5), quantile(latencies, 0.99)
    return {
        "mix": mix, "clients": clients,
        "ops_per_s": round(counts["ok"] / duration), "writes_per_s": round(counts["writes_ok"]
                                                                          / duration),
        "p50_ms": round(p50 * 1000, 2) if p50 is not None else None,
        "p99_ms": round(p99 * 1000, 2) if p99 is not None else None,
        "fail": counts["fail"], "info": counts["info"],
    }  # fmt: skip


async def failover(cluster: Cluster, target: Target, trials: int) -> dict[str, Any]:
    times = []
    for trial in range(trials):
        leader = await settled(cluster, target)
        await asyncio.sleep(0.1 + random.random() * 0.1)  # a random heartbeat phase
        home = next(n for n in NODES if n != leader)
        client = target.client(cluster.client_addresses, home, f"failover-{trial}", 0.5)
        killed = time.perf_counter()
        await cluster.kill(leader)
        while (await client.invoke("put", "failover", str(trial))).type != "ok":
            if time.perf_counter() - killed > 30:
                raise TimeoutError("no write acknowledged within 30 s of killing the leader")
        times.append(time.perf_counter() - killed)
        await client.close()
        await cluster.start(leader)
    return {"trials": [round(t, 3) for t in times], "median_s": round(statistics.median(times), 3),
            "min_s": round(min(times), 3), "max_s": round(max(times), 3)}  # fmt: skip


async def measure(name: str, network: str, args: argparse.Namespace, base: str
                  ) -> dict[str, Any]:  # fmt: skip
    target = load_target(name)
    lacking = target.missing()
    if lacking:
        return {"skipped": lacking}
    run = create_run(base, f"bench-{name}")
    async with Cluster(run, NODES, target=target, network=network) as cluster:
        results = [await throughput(cluster, target, mix, n, args.duration)
                   for mix in MIXES for n in args.clients]  # fmt: skip
        fail = await failover(cluster, target, args.trials) if args.trials else None
    return {"network": network, "description": target.description, "throughput": results,
            "failover": fail}  # fmt: skip


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="splitbrain-bench-targets-") as base:
        report = {name: await measure(name, args.network, args, base) for name in args.targets}
    return {
        "benchmark": "targets",
        "nodes": len(NODES),
        "duration_s": args.duration,
        "clients_homed_at": "the leader",
        "election_timeout_ms": {"raft": [150, 300], "etcd": 1000},
        "targets": report,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1m": round(os.getloadavg()[0], 2)},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=lambda s: s.split(","), default=["raft", "etcd"])
    parser.add_argument("--network", choices=("proxy", "netns"), default="netns",
                        help="etcd runs in netns only")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--trials", type=int, default=5, help="failover trials (0: skip)")
    parser.add_argument("--clients", type=lambda s: [int(c) for c in s.split(",")],
                        default=[1, 8, 32])
    result = asyncio.run(main(parser.parse_args()))
    json.dump(result, sys.stdout, indent=2)
    print()

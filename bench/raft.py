"""Benchmark of the bundled Raft key-value server: prints one JSON object.

    python bench/raft.py [--duration 3] [--trials 10] [--no-fsync]

- throughput and p50/p99 latency of acknowledged operations on 3 local nodes (fsync on), for 1,
  8 and 32 concurrent clients: write-only (put), write-heavy (90% put) and read-heavy (90% get,
  linearizable by ReadIndex);
- failover: kill -9 of the leader → first acknowledged write, over `--trials` trials, with the
  default 150–300 ms election timeouts (10 ms ticks, election tick 15).

Clients run in this process (one asyncio loop), sharing the machine's cores with the nodes.
Goals (issue 3): >= 5,000 acknowledged writes/s with 32 clients; median failover <= 0.5 s.
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
from pathlib import Path

from splitbrain.raft.client import Client
from splitbrain.raft.local import LocalCluster

MIXES = {"write-only": 1.0, "write-heavy": 0.9, "read-heavy": 0.1}  # share of writes
CONCURRENCY = (1, 8, 32)


def percentile(sorted_values: list[float], q: float) -> float:
    """Of a non-empty sorted list."""
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def throughput(cluster: LocalCluster, mix: str, clients: int, duration: float) -> dict:
    leader = await cluster.wait_leader()
    share = MIXES[mix]
    conns = [
        Client(cluster.client_addresses, leader, f"{mix}-{clients}-{i}", timeout=2.0)
        for i in range(clients)
    ]
    latencies: list[float] = []
    counts = {"ok": 0, "fail": 0, "info": 0, "writes_ok": 0}
    warmup_end = time.perf_counter() + 0.3
    end = warmup_end + duration

    async def work(i: int, client: Client) -> None:
        rng = random.Random(i)
        while (start := time.perf_counter()) < end:
            write = rng.random() < share
            key = f"k{rng.randrange(100)}"
            out = await (
                client.invoke("put", key, "v") if write else client.invoke("get", key, None)
            )
            done = time.perf_counter()
            if start < warmup_end:
                continue
            counts[out.type] += 1
            if out.type == "ok":
                latencies.append(done - start)
                counts["writes_ok"] += write

    await asyncio.gather(*(work(i, c) for i, c in enumerate(conns)))
    for c in conns:
        await c.close()
    latencies.sort()
    ms = 1000.0
    return {
        "mix": mix,
        "clients": clients,
        "ops_per_s": round(counts["ok"] / duration),
        "writes_per_s": round(counts["writes_ok"] / duration),
        "p50_ms": round(percentile(latencies, 0.5) * ms, 2) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99) * ms, 2) if latencies else None,
        "ok": counts["ok"],
        "fail": counts["fail"],
        "info": counts["info"],
    }


async def failover(cluster: LocalCluster, trials: int) -> dict:
    times = []
    for trial in range(trials):
        leader = await cluster.wait_leader(timeout=20)
        await asyncio.sleep(0.1 + random.random() * 0.1)  # kill at a random heartbeat phase
        home = next(n for n in cluster.names if n != leader)
        client = Client(cluster.client_addresses, home, f"failover-{trial}", timeout=0.5)
        killed = time.perf_counter()
        cluster.kill(leader)
        while (await client.invoke("put", "failover", str(trial))).type != "ok":
            if time.perf_counter() - killed > 30:
                raise TimeoutError("no write acknowledged within 30 s of killing the leader")
        times.append(time.perf_counter() - killed)
        await client.close()
        cluster.start(leader)
        await cluster.wait_caught_up(leader, timeout=20)
    return {
        "trials": [round(t, 3) for t in times],
        "median_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "max_s": round(max(times), 3),
    }


async def main(args: argparse.Namespace) -> dict:
    node_args = ["--no-fsync"] if args.no_fsync else []
    with (
        tempfile.TemporaryDirectory(prefix="splitbrain-bench-") as tmp,
        LocalCluster(Path(tmp), 3, node_args=node_args) as cluster,
    ):
        cluster.start_all()
        await cluster.wait_leader(timeout=20)
        results = [
            await throughput(cluster, mix, n, args.duration) for mix in MIXES for n in CONCURRENCY
        ]
        fail = await failover(cluster, args.trials) if args.trials else None
    best_writes = max(r["writes_per_s"] for r in results if r["clients"] == 32)
    return {
        "benchmark": "raft",
        "nodes": 3,
        "fsync": not args.no_fsync,
        "duration_s": args.duration,
        "election_timeout_ms": [150, 300],
        "throughput": results,
        "failover": fail,
        "goals": {
            "writes_per_s_32_clients": {"goal": 5000, "measured": best_writes},
            "median_failover_s": {"goal": 0.5, "measured": fail and fail["median_s"]},
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--trials", type=int, default=10, help="failover trials (0: skip)")
    parser.add_argument("--no-fsync", action="store_true", help="nodes skip fsync")
    result = asyncio.run(main(parser.parse_args()))
    json.dump(result, sys.stdout, indent=2)
    print()

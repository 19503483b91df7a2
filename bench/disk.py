"""What the forgetful FUSE layer of disk faults costs the bundled Raft: prints one JSON object.

    python bench/disk.py [--duration 3] [--clients 1,8,32] [--repeat 2]

Acknowledged writes per second (write-only, put) and p50/p99 latency on 3 local nodes, fsync on,
with each node's data directory on the plain filesystem (`plain`) and mounted through
cluster/diskfs.py (`fuse`), as `splitbrain run` mounts it for power-loss and disk-full. The two
set-ups alternate `--repeat` times, so a change in the machine's load hits both alike; each
figure is the best of the repeats. Needs /dev/fuse and pyfuse3 (cluster/disks.py missing()).
Note: through FUSE an fsync reaches the layer, which records it, not the disk underneath
(diskfs.py: durability is modelled, not provided), so `fuse` pays the FUSE round trips and
`plain` pays the real fsyncs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from raft import throughput  # bench/raft.py: the same measurement as the Raft benchmark
from splitbrain.cluster import disks
from splitbrain.cluster.disks import Disks, NodeDisk
from splitbrain.cluster.lifeline import Lifeline
from splitbrain.raft.local import LocalCluster

NODES = 3


async def measure(fuse: bool, clients: list[int], duration: float) -> dict[int, dict]:
    with tempfile.TemporaryDirectory(prefix="splitbrain-bench-disk-") as tmp:
        root = Path(tmp)
        lifeline = Lifeline()
        mounted = None
        try:
            with LocalCluster(root, NODES) as cluster:
                if fuse:
                    mounted = await Disks.start(
                        {n: NodeDisk.under(cluster.node_dir(n), cluster.node_dir(n) / "data")
                         for n in cluster.names}, lifeline)  # fmt: skip
                cluster.start_all()
                await cluster.wait_leader(timeout=30)
                out = {}
                for n in clients:
                    r = await throughput(cluster, "write-only", n, duration)
                    out[n] = {k: r[k] for k in ("writes_per_s", "p50_ms", "p99_ms")}
                return out
        finally:
            if mounted is not None:  # after the nodes are gone
                mounted.close()
            lifeline.close()


async def main(args: argparse.Namespace) -> dict:
    clients = [int(c) for c in args.clients.split(",")]
    runs: dict[str, list[dict[int, dict]]] = {"plain": [], "fuse": []}
    began = time.monotonic()
    for _ in range(args.repeat):
        for setup in ("plain", "fuse"):
            runs[setup].append(await measure(setup == "fuse", clients, args.duration))
    best = {setup: {n: max((r[n] for r in rs), key=lambda r: r["writes_per_s"]) for n in clients}
            for setup, rs in runs.items()}  # fmt: skip
    return {
        "benchmark": "disk",
        "nodes": NODES,
        "fsync": True,
        "duration_s": args.duration,
        "repeat": args.repeat,
        "writes": [{"clients": n, "plain": best["plain"][n], "fuse": best["fuse"][n],
                    "fuse_over_plain": round(best["fuse"][n]["writes_per_s"]
                                             / best["plain"][n]["writes_per_s"], 2)}
                   for n in clients],
        "wall_s": round(time.monotonic() - began, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1m": round(os.getloadavg()[0], 2)},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--clients", default="1,8,32", help="concurrent clients, each measured")
    parser.add_argument("--repeat", type=int, default=2, help="alternations of the two set-ups")
    cli = parser.parse_args()
    if disks.missing():
        sys.exit(f"bench/disk.py: {disks.missing()}")
    json.dump(asyncio.run(main(cli)), sys.stdout, indent=2)
    print()

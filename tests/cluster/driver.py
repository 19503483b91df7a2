"""A driver for lifetime tests: starts a Cluster, pauses n2, prints the pids, waits forever.

    python driver.py RUNS_BASE fake|raft NODES

Prints one JSON line {"pids": {...}} once the cluster is up, "closed" after teardown.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from splitbrain.cluster.cluster import Cluster
from splitbrain.cluster.targets import NodeLaunch, bundled_raft
from splitbrain.store import create_run

FAKE = str(Path(__file__).with_name("fake_node.py"))


def fake_node(launch: NodeLaunch) -> list[str]:
    """The bundled command line, but run by the stand-in node."""
    return [sys.executable, FAKE, *bundled_raft(launch)[4:]]


async def main(base: str, kind: str, nodes: int) -> None:
    run = create_run(base, "driver")
    target = fake_node if kind == "fake" else bundled_raft
    try:
        async with Cluster(run, [f"n{i + 1}" for i in range(nodes)], target=target) as cluster:
            await cluster.pause("n2")  # a stopped process cannot run its lifeline thread
            print(json.dumps({"pids": cluster.pids()}), flush=True)
            await asyncio.Event().wait()
    finally:
        print("closed", flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    except asyncio.CancelledError:
        sys.exit(143)

"""A driver for lifetime tests: starts a Cluster, pauses n2, prints the pids, waits forever.

    python driver.py RUNS_BASE fake|raft NODES [proxy|netns [disks]]

Prints one JSON line {"pids": {...}, "netns": [...], "mounts": [...]} once the cluster is up
(the namespaces of a netns run, the data directories mounted with `disks`), "closed" after
teardown.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from pathlib import Path

from splitbrain.cluster.cluster import Cluster
from splitbrain.cluster.firewall import NftNetwork
from splitbrain.cluster.targets import NodeLaunch, bundled_raft
from splitbrain.store import create_run
from splitbrain.targets import raft
from splitbrain.targets.target import Command, Target

FAKE = str(Path(__file__).with_name("fake_node.py"))


def fake_command(launch: NodeLaunch) -> Command:
    """The bundled command line, but run by the stand-in node."""
    return Command((sys.executable, FAKE, *bundled_raft(launch)[4:]))


FAKE_NODE: Target = dataclasses.replace(raft.target({}), name="fake", command=fake_command)


async def main(base: str, kind: str, nodes: int, network: str, disks: bool) -> None:
    run = create_run(base, "driver")
    target = FAKE_NODE if kind == "fake" else raft.target({})
    names = [f"n{i + 1}" for i in range(nodes)]
    try:
        async with Cluster(run, names, target=target, network=network, disks=disks) as cluster:
            await cluster.pause("n2")  # a stopped process cannot run its lifeline thread
            net = cluster.network
            namespaces = net.namespaces.names if isinstance(net, NftNetwork) else []
            mounts = [str(run.node_data(n)) for n in names] if disks else []
            print(json.dumps({"pids": cluster.pids(), "netns": namespaces, "mounts": mounts}),
                  flush=True)  # fmt: skip
            await asyncio.Event().wait()
    finally:
        print("closed", flush=True)


if __name__ == "__main__":
    try:
        mode = sys.argv[4] if len(sys.argv) > 4 else "proxy"
        asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), mode, "disks" in sys.argv))
    except asyncio.CancelledError:
        sys.exit(143)

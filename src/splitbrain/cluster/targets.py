"""What the cluster decides for one node (NodeLaunch), and the command line of the bundled Raft.

A NodeLaunch is everything a target needs to build a node's command (splitbrain/targets/ holds
the target interface around it). The node must listen on its own address — for peers on
peers[node], for clients on (host, client_port) — send its messages for peer j to peers[j] (a
link proxy in proxy mode, j's own address in netns mode), and exit when the lifeline fd reads
EOF (the parent-death signal covers a node that cannot watch it).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class NodeLaunch:
    node: str
    peers: Mapping[str, tuple[str, int]]  # own: where it listens; others: where to reach them
    client_port: int  # it listens for clients on (host, client_port)
    data_dir: Path
    events: Path
    log: Path
    cluster_id: str
    lifeline_fd: int
    unsafe: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = ()  # appended verbatim (Cluster's node_args)
    host: str = "127.0.0.1"  # its own address (its namespace's in netns mode)
    index: int = 1  # its position in the cluster, from 1
    nodes: tuple[str, ...] = ()  # every node of the cluster, in order
    secret_file: Path | None = None  # the run's peer-link secret (cluster/secret.py), mode 0600

    @property
    def peer_port(self) -> int:
        return self.peers[self.node][1]


def bundled_raft(launch: NodeLaunch) -> list[str]:
    """`python -m splitbrain node ...` as raft/command.py defines it."""
    cluster = ",".join(f"{n}={h}:{p}" for n, (h, p) in launch.peers.items())
    argv = [
        sys.executable, "-m", "splitbrain", "node",
        "--id", launch.node,
        "--cluster", cluster,
        "--client-port", str(launch.client_port),
        "--data-dir", str(launch.data_dir),
        "--events", str(launch.events),
        "--log", str(launch.log),
        "--cluster-id", launch.cluster_id,
        "--lifeline-fd", str(launch.lifeline_fd),
    ]  # fmt: skip
    if launch.secret_file is not None:
        argv += ["--secret-file", str(launch.secret_file)]
    for name in launch.unsafe:
        argv += ["--unsafe", name]
    return argv + list(launch.extra_args)

"""Targets: how to build the command line of one node of a system under test.

A target is a function from a NodeLaunch (everything the cluster decided for that node) to an
argv. The bundled Raft is the first and default target; another system plugs in by writing one
such function. The node must listen on its peer and client ports (the cluster waits for both),
send its messages for peer j to peers[j] (a link proxy), and exit when the lifeline fd reads EOF.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class NodeLaunch:
    node: str
    peers: Mapping[str, tuple[str, int]]  # own real peer address; for others, the link proxy
    client_port: int
    data_dir: Path
    events: Path
    log: Path
    cluster_id: str
    lifeline_fd: int
    unsafe: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = ()  # appended verbatim (Cluster's node_args)
    secret_file: Path | None = None  # the run's peer-link secret (cluster/secret.py), mode 0600


Target = Callable[[NodeLaunch], list[str]]


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

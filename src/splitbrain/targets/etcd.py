"""etcd as a built-in target (`--target etcd`): Debian's etcd-server 3.4+, found on PATH.

Each member runs in its own network namespace (netns mode only: a member's identity is bound to
the one peer URL it advertises, so per-link proxies cannot stand in front of it) and listens on
its own address, peers on 2380 and clients on 2379. Clients use the v3 JSON gateway
(etcd_client.py); leader lookup asks each member's maintenance status. etcd writes no
events.jsonl and has no crash points: log agreement is not run, and churn and crash are not
offered. `--target-arg reads=serializable` makes reads serializable (a member's local state,
possibly stale), a real configuration whose anomaly a run with partitions catches.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Mapping

from splitbrain.cluster.targets import NodeLaunch
from splitbrain.targets.client import Client
from splitbrain.targets.etcd_client import EtcdClient, member_role
from splitbrain.targets.target import Address, Command, PortOpen, Role, Target

READS = ("linearizable", "serializable")
MINIMUM = (3, 4)


def _url(host: str, port: int) -> str:
    return f"http://{host}:{port}"


def command(launch: NodeLaunch) -> Command:
    own = _url(launch.host, launch.peer_port)
    client = _url(launch.host, launch.client_port)
    cluster = ",".join(f"{n}={_url(h, p)}" for n, (h, p) in launch.peers.items())
    argv = (
        "etcd", "--name", launch.node, "--data-dir", str(launch.data_dir),
        "--listen-peer-urls", own, "--initial-advertise-peer-urls", own,
        "--listen-client-urls", client, "--advertise-client-urls", client,
        "--initial-cluster", cluster, "--initial-cluster-state", "new",
        "--initial-cluster-token", launch.cluster_id,
        "--logger", "zap", "--log-outputs", str(launch.log),
    )  # fmt: skip
    return Command(argv + launch.extra_args)


async def role(address: Address, timeout: float) -> Role | None:
    found = await member_role(address, timeout)
    return None if found is None else Role(*found)


@functools.cache
def missing() -> str | None:
    path = shutil.which("etcd")
    if path is None:
        return "`etcd` was not found on PATH: install Debian's etcd-server package"
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`{path} --version` failed: {exc}"
    found = re.search(r"etcd Version: (\d+)\.(\d+)", out.stdout)
    if found is None:
        return f"`{path} --version` did not say its version: {out.stdout.strip()[:200]}"
    if (int(found.group(1)), int(found.group(2))) < MINIMUM:
        return (f"etcd {found.group(1)}.{found.group(2)} at {path} is too old: 3.4 or later "
                "is needed (Debian's etcd-server)")
    return None


def target(args: Mapping[str, str]) -> Target:
    unknown = sorted(set(args) - {"reads"})
    if unknown:
        raise ValueError(f"no --target-arg {unknown[0]!r} (known: reads)")
    reads = args.get("reads", "linearizable")
    if reads not in READS:
        raise ValueError(f"--target-arg reads={reads}: must be {' or '.join(READS)}")

    def client(nodes: Mapping[str, Address], home: str, client_id: str,
               timeout: float) -> Client:  # fmt: skip
        return EtcdClient(nodes, home, client_id, timeout, serializable=reads == "serializable")

    return Target(
        name="etcd",
        description=f"etcd 3.4+ (Debian's etcd-server), {reads} reads, v3 JSON gateway",
        command=command,
        client=client,
        ready=PortOpen("client"),
        networks=("netns",),
        leader=role,
        disk=True,  # --data-dir holds its WAL, snapshots and bbolt database
        missing=missing,
    )

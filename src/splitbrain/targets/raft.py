"""The bundled Raft as a target (`--target raft`, the default): every capability there is.

Its nodes write events.jsonl (log agreement, churn), answer a status request (leader lookup),
take crash points (raft/crashpoints.py), frame every peer message (per-message net faults) and
keep exactly-once sessions (clients retry under one request id),
so every fault and every checker applies. It runs in both network modes, proxy by default.
raft/ is imported when a function runs, not when this module is, so `cluster/` and `check`
import without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from splitbrain.cluster.ports import HOST
from splitbrain.cluster.targets import NodeLaunch, bundled_raft
from splitbrain.config import UNSAFE_FLAGS, RunConfig
from splitbrain.targets.client import Client
from splitbrain.targets.knobs import RAFT_KNOBS
from splitbrain.targets.target import Address, Command, CrashPoints, PortOpen, Role, Target

if TYPE_CHECKING:
    from splitbrain.raft.server import NodeConfig


def command(launch: NodeLaunch) -> Command:
    return Command(tuple(bundled_raft(launch)))


def client(addresses: Mapping[str, Address], home: str, client_id: str, timeout: float,
           retries: int = 0) -> Client:  # fmt: skip
    from splitbrain.raft.client import Client as RaftClient

    return RaftClient(addresses, home, client_id, timeout, retries)


async def role(address: Address, timeout: float) -> Role | None:
    from splitbrain.raft.client import node_status

    status = await node_status(address, timeout)
    if not status:
        return None
    return Role(status.get("role") == "leader", int(status.get("term", 0)))


async def arm(address: Address, point: str | None, timeout: float) -> bool:
    from splitbrain.raft.client import arm_crash_point

    return await arm_crash_point(address, point, timeout)


def node_config(launch: NodeLaunch) -> NodeConfig:
    """The configuration a node started with `launch` runs with, read by the node's own parser
    (raft/command.parse); UsageError where it would refuse to start. The simulator builds its
    nodes with this, so --node-arg means in sim what it means in run."""
    from splitbrain.raft.command import parse

    argv = bundled_raft(launch)
    return parse(argv[argv.index("node") + 1 :])


def node_args_problem(node_args: tuple[str, ...]) -> str | None:
    """What the node's own parser says of `--node-arg` values it would refuse, or None."""
    from splitbrain.exitcodes import UsageError

    try:
        node_config(NodeLaunch(node="n1", peers={"n1": (HOST, 1)}, client_port=2,
                               data_dir=Path("data"), events=Path("events.jsonl"),
                               log=Path("node.log"), cluster_id="check", lifeline_fd=-1,
                               extra_args=node_args))  # fmt: skip
    except UsageError as exc:
        return f"{' '.join(node_args)}: {exc}"
    return None


def target(args: Mapping[str, str]) -> Target:
    if args:
        raise ValueError(f"target raft takes no --target-arg (got {', '.join(sorted(args))}); "
                         "use --node-arg for node options")
    from splitbrain.raft.crashpoints import POINTS

    return Target(
        name="raft",
        description="the bundled Raft key-value server (splitbrain node)",
        command=command,
        client=client,
        ready=PortOpen("client"),  # it opens its peer port before its client port
        networks=("proxy", "netns"),
        unsafe=UNSAFE_FLAGS,
        events=True,
        framed=True,
        leader=role,
        node_args_problem=node_args_problem,
        knobs=RAFT_KNOBS,
        crash_points=CrashPoints(tuple(POINTS), arm),
        retrying_client=client,  # kv.py: a repeated (client id, seq) is applied once
        raft_messages=True,
        clock=True,  # Python: time and timed waits through libc
        disk=True,  # the WAL in --data-dir is all it keeps
        # elections take 150-300 ms (15-30 ticks of 10 ms) and a node starts in about as long:
        # a fault every half second keeps the cluster changing leaders, catching up and
        # recovering (a 60 s `--nemesis all` run caught 27 of the 43 mutants of bench/mutants/
        # where 3 s caught 21)
        nemesis_interval=RunConfig.nemesis_interval,  # 0.5: RunConfig defaults to this target
    )

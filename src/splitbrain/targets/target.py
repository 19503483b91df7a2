"""The target interface: how splitbrain starts, talks to and (optionally) looks inside a system.

A Target is a record of the roles Jepsen keeps apart, plus optional capabilities:

- start: `command(launch) -> Command` builds one node's argv, environment and working directory
  from a NodeLaunch (node id, peer map, addresses, data dir, cluster id, lifeline fd...);
  `ready` says when a started node counts as up. Kill, pause and restart stay process-level
  (SIGKILL, SIGSTOP/SIGCONT), the same for every target.
- client: `client(addresses, home, client_id, timeout) -> Client` maps workload operations to
  the system's API and replies to ok / fail / info (targets/client.py has the rules).
- capabilities, each optional, each enabling checkers or faults (CAPABILITIES): node events,
  leader lookup, crash points, framed peer messages. A checker that needs a missing one is
  reported "not-run" with the reason; a fault that needs one is refused before the run (64).

Targets come from three places (targets/registry.py): built in (raft, etcd), a TOML file, or a
Python plugin under the entry-point group `splitbrain.targets`. A plugin's factory takes the
`--target-arg` values and returns a Target; docs/targets.md shows one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from splitbrain.cluster.targets import NodeLaunch
from splitbrain.nemesis.interval import interval_problem
from splitbrain.targets.client import Client
from splitbrain.targets.knobs import Knob

Address = tuple[str, int]
NETWORKS = ("proxy", "netns")
DEFAULT_NEMESIS_INTERVAL = 3.0  # seconds: a second-long election timeout, as etcd's, recovers

# capability -> what it enables (for messages and docs/targets.md)
CAPABILITIES = {
    "events": "node events (events.jsonl): the log-agreement checker and the churn fault",
    "leader": "leader lookup: kill/pause/restart/crash:leader and partition:isolate-leader",
    "crash-points": "crash points: the crash fault",
    "framed": "framed peer messages: per-message net faults (delay, duplicate, reorder, drop) "
              "in proxy mode",
    "sessions": "exactly-once sessions: clients retry an indeterminate request under the same "
                "request id (--retries)",
    "raft-messages": "Raft message headers (the bundled Raft's peer format): net faults aimed at "
                     "message kinds and terms (drop-acks, term-reorder...)",
    "clock": "clocks read through libc, which libfaketime can skew: the clock fault (not Go "
             "binaries such as etcd, which read the kernel's clock directly)",
    "disk": "data directory holding all its durable state, which a FUSE mount can make "
            "forget unsynced writes: the power-loss, corrupt and disk-full faults",
}


@dataclass(frozen=True, slots=True)
class Command:
    """How to start one node."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)  # added to the driver's environment
    cwd: Path | None = None  # default: the driver's working directory


@dataclass(frozen=True, slots=True)
class PortOpen:
    """Up when a TCP connection to the node's client (or peer) port succeeds."""

    port: Literal["client", "peer"] = "client"


@dataclass(frozen=True, slots=True)
class HttpProbe:
    """Up when `GET path` on the node's client (or peer) port answers 2xx."""

    path: str = "/"
    port: Literal["client", "peer"] = "client"


@dataclass(frozen=True, slots=True)
class CommandProbe:
    """Up when this command exits 0 (run from the driver, which reaches every node's address)."""

    command: Callable[[NodeLaunch], Command]


Readiness = PortOpen | HttpProbe | CommandProbe


@dataclass(frozen=True, slots=True)
class Role:
    """What a node says of itself, for leader lookup."""

    leader: bool
    term: int


@dataclass(frozen=True, slots=True)
class CrashPoints:
    """Named instants where an armed node kills itself (the bundled Raft's raft/crashpoints.py)."""

    points: tuple[str, ...]
    arm: Callable[[Address, str | None, float], Awaitable[bool]]  # (client address, point|None,
    # timeout) -> acknowledged; None disarms


ClientFactory = Callable[[Mapping[str, Address], str, str, float], Client]
# (client address of every node, home node, client id, operation timeout) -> a fresh client
RetryingClientFactory = Callable[[Mapping[str, Address], str, str, float, int], Client]
# the same, and how many times an indeterminate request is retried under its request id


def _nothing_missing() -> str | None:
    return None


@dataclass(frozen=True)
class Target:
    name: str
    command: Callable[[NodeLaunch], Command]
    client: ClientFactory
    ready: Readiness = PortOpen()
    description: str = ""
    source: str = "built-in"  # "built-in", "file <path>" or "plugin <entry point>"
    args: Mapping[str, str] = field(default_factory=dict)  # the --target-arg values it took
    workloads: tuple[str, ...] = ("register", "kv")  # the workloads its client can run
    networks: tuple[str, ...] = NETWORKS  # the network modes it runs in; the first is the default
    unsafe: tuple[str, ...] = ()  # the --unsafe flags its nodes take
    # Optional capabilities (CAPABILITIES); absent ones are False / None.
    events: bool = False  # every node writes events.jsonl as DESIGN.md "Node events" says
    framed: bool = False  # peer traffic is 4-byte-length frames, one message each
    leader: Callable[[Address, float], Awaitable[Role | None]] | None = None  # (client address,
    # timeout) -> what the node says it is; None if it does not answer
    crash_points: CrashPoints | None = None
    # The nodes apply a request id at most once (exactly-once sessions), so a client may retry
    # an indeterminate request under the same id: this factory builds one that does.
    retrying_client: RetryingClientFactory | None = None
    raft_messages: bool = False  # peer frames are raft/codec.py messages (codec.peek reads them)
    clock: bool = False  # the nodes read time through libc (cluster/clocks.py can skew it)
    disk: bool = False  # the nodes keep all durable state in NodeLaunch.data_dir (disks.py)
    # (node arguments) -> why its nodes would refuse them (--node-arg), checked before a run
    node_args_problem: Callable[[tuple[str, ...]], str | None] | None = None
    # node settings a swarm run draws per seed into the node arguments (targets/knobs.py)
    knobs: Mapping[str, Knob] = field(default_factory=dict)
    missing: Callable[[], str | None] = _nothing_missing  # what this machine lacks to run it
    # (an executable, a package): checked before a run, which then exits 3 with the message
    # Seconds between fault changes unless --nemesis-interval says: a few times what its cluster
    # takes to elect a leader after losing one. Bugs live in the transitions (elections,
    # catch-up, recovery), so the fewer seconds a run spends in a settled state the more it finds,
    # but a fault shorter than an election never lets the cluster recover.
    nemesis_interval: float = DEFAULT_NEMESIS_INTERVAL

    def __post_init__(self) -> None:
        if not self.networks or any(n not in NETWORKS for n in self.networks):
            raise ValueError(f"target {self.name}: networks must be some of {', '.join(NETWORKS)}")
        problem = interval_problem(self.nemesis_interval)
        if problem:
            raise ValueError(f"target {self.name}: nemesis_interval {problem}")

    @property
    def capabilities(self) -> tuple[str, ...]:
        have = {"events": self.events, "leader": self.leader is not None,
                "crash-points": self.crash_points is not None, "framed": self.framed,
                "sessions": self.retrying_client is not None, "raft-messages": self.raft_messages,
                "clock": self.clock, "disk": self.disk}
        return tuple(c for c in CAPABILITIES if have[c])

    @property
    def default_network(self) -> str:
        return self.networks[0]

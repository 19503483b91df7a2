"""The configuration of one chaos run: every option and the one seed everything derives from.

It is written to config.json so a run can be reproduced with the exact command it records.
"""

from __future__ import annotations

import platform
import shlex
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from splitbrain import __version__
from splitbrain.workloads.generator import READS

UNSAFE_FLAGS = ("stale-reads", "commit-old-terms", "no-vote-persist", "no-log-check",
                "ack-before-fsync")
# swarm: a swarm run (nemesis/schedule.py is_swarm) draws the target's knobs per seed
# (targets/knobs.py); default: the nodes keep their own settings.
KNOBS = ("swarm", "default")


@dataclass(frozen=True)
class RunConfig:
    nodes: int = 5  # cluster size
    time_limit: float = 30.0  # seconds of the main phase (clients + nemesis)
    concurrency: int = 10  # client workers
    rate: float = 300.0  # total operations per second (0 = unlimited)
    workload: str = "register"
    reads: float = READS  # share of the workload's operations that are reads
    nemesis: tuple[str, ...] = ("partition", "kill", "pause")
    nemesis_interval: float = 0.5  # seconds between fault changes: the raft target's (raft.py)
    seed: int = 0
    out: str = "runs"  # base directory of run directories
    name: str = ""  # runs/<name>/...; defaults to the workload name
    unsafe: tuple[str, ...] = ()  # deliberately unsafe node variants
    op_timeout: float = 1.0  # seconds per attempt of an operation
    retries: int = 2  # attempts after one that may have taken effect, same (client id, seq)
    check_time_limit: float = 60.0  # seconds the linearizability search may take
    node_args: tuple[str, ...] = ()  # extra arguments for every node, with the knobs drawn
    knobs: str = "swarm"  # one of KNOBS: whether a swarm run draws the target's knobs (run.py)
    target: str = "raft"  # the system under test: a built-in or plugin name, or a TOML file
    target_args: tuple[tuple[str, str], ...] = ()  # its --target-arg KEY=VALUE, in order
    network: str = "proxy"  # network mode: proxy (link proxies) or netns (namespaces)

    @property
    def node_names(self) -> list[str]:
        return [f"n{i}" for i in range(1, self.nodes + 1)]

    @property
    def faults(self) -> frozenset[str]:
        """The fault kinds of the nemesis, without their variants ("kill:leader" -> "kill")."""
        return frozenset(f.partition(":")[0] for f in self.nemesis)

    @property
    def run_name(self) -> str:
        return self.name or self.workload

    def command(self) -> str:
        """The exact command that reproduces this run (same seed, same options)."""
        args = [
            "splitbrain", "run",
            "--nodes", str(self.nodes),
            "--time-limit", f"{self.time_limit:g}",
            "--concurrency", str(self.concurrency),
            "--rate", f"{self.rate:g}",
            "--workload", self.workload,
            "--reads", f"{self.reads:g}",
            "--nemesis", ",".join(self.nemesis) or "none",
            "--nemesis-interval", f"{self.nemesis_interval:g}",
            "--op-timeout", f"{self.op_timeout:g}",
            "--retries", str(self.retries),
            "--check-time-limit", f"{self.check_time_limit:g}",
            "--seed", str(self.seed),
        ]
        for flag in self.unsafe:
            args += ["--unsafe", flag]
        if self.name:
            args += ["--name", self.name]
        if self.out != "runs":
            args += ["--out", self.out]
        args += [f"--node-arg={arg}" for arg in self.node_args]
        if self.knobs != "swarm":
            args += ["--knobs", self.knobs]
        if self.target != "raft" or self.target_args or self.network != "proxy":
            args += ["--target", self.target]
            args += [f"--target-arg={k}={v}" for k, v in self.target_args]
            args += ["--network", self.network]
        return shlex.join(args)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["name"] = self.run_name
        data["nodes"] = self.node_names
        data["node_count"] = self.nodes
        data["nemesis"] = list(self.nemesis)
        data["unsafe"] = list(self.unsafe)
        data["node_args"] = list(self.node_args)
        data["target_args"] = dict(self.target_args)
        data["command"] = self.command()
        data["argv"] = list(sys.argv)
        data["versions"] = {
            "splitbrain": __version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
        }
        data["started"] = datetime.now(UTC).isoformat(timespec="seconds")
        return data

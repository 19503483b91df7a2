"""The configuration of one simulation: a run's options, the world's physics, maybe its faults.

config.json of a sim run holds everything needed to replay it byte for byte: the RunConfig
fields (`run` writes the same), `"mode": "sim"`, the physics, which settings the seed drew
(`swarm`), and — for a shrunk run — the explicit fault plans it replays instead of drawing them
from the seed. `clock_started` is the virtual instant history time 0 stands for on the nodes'
clock (`started` is when the simulation ran). `from_json` reads it back (ConfigError names a
bad field).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, fields, replace
from typing import Any

from splitbrain.cluster.faults import LinkFaults
from splitbrain.config import RunConfig
from splitbrain.nemesis.schedule import Plan
from splitbrain.sim.world import Physics

# RunConfig fields added after sim run directories were first written.
SINCE = frozenset({"reads", "knobs"})


class ConfigError(ValueError):
    """config.json of a sim run that cannot be replayed (names the field)."""


@dataclass(frozen=True)
class SimConfig:
    run: RunConfig
    physics: Physics = field(default_factory=Physics)
    plans: tuple[Plan, ...] | None = None  # the faults, explicitly (a shrunk run); None: the seed's
    swarm: tuple[str, ...] = ()  # the settings the seed drew (swarm.py); the others were given
    shrunk_from: dict[str, Any] | None = None  # {"ops", "faults", "run"} of the original
    stop_after: int | None = None  # loop iterations it ran before its CPU budget ran out

    @property
    def seed(self) -> int:
        return self.run.seed

    def replace_run(self, **changes: Any) -> SimConfig:
        return replace(self, run=replace(self.run, **changes))

    def command(self) -> str:
        """The command that reproduces this simulation (every setting explicit)."""
        r = self.run
        args = ["splitbrain", "sim", "--seed", str(r.seed), "--nodes", str(r.nodes),
                "--time-limit", f"{r.time_limit:g}", "--concurrency", str(r.concurrency),
                "--rate", f"{r.rate:g}", "--workload", r.workload, "--reads", f"{r.reads:g}",
                "--nemesis", ",".join(r.nemesis) or "none",
                "--nemesis-interval", f"{r.nemesis_interval:g}",
                "--op-timeout", f"{r.op_timeout:g}"]  # fmt: skip
        for name, (lo, hi) in self.physics.to_json().items():
            args += [f"--{name.replace('_', '-')}", f"{lo:g},{hi:g}"]
        for flag in r.unsafe:
            args += ["--unsafe", flag]
        args += [f"--node-arg={arg}" for arg in r.node_args]
        if self.plans is not None or self.stop_after is not None:  # not expressible as flags
            return "splitbrain sim --replay RUN_DIR"
        return shlex.join(args)

    def to_json(self, clock_started: str | None = None) -> dict[str, Any]:
        data = self.run.to_json()
        data.update(mode="sim", command=self.command(), physics=self.physics.to_json(),
                     swarm=list(self.swarm))  # fmt: skip
        if clock_started is not None:  # the virtual instant history time 0 stands for
            data["clock_started"] = clock_started
        if self.plans is not None:
            data["plans"] = [plan_to_json(p) for p in self.plans]
        if self.shrunk_from is not None:
            data["shrunk_from"] = self.shrunk_from
        if self.stop_after is not None:
            data["stop_after"] = self.stop_after
        return data

    @classmethod
    def from_json(cls, data: Any) -> SimConfig:
        if not isinstance(data, dict) or data.get("mode") != "sim":
            raise ConfigError('not the config.json of a sim run (no "mode": "sim")')
        values: dict[str, Any] = {}
        for f in fields(RunConfig):
            if f.name not in data and f.name in SINCE:
                continue  # written before the field existed: its default was in force
            if f.name not in data:
                raise ConfigError(f"config.json has no {f.name!r}")
            value = data["node_count"] if f.name == "nodes" else data[f.name]
            if isinstance(value, dict):  # target_args: written as an object
                value = list(value.items())
            values[f.name] = _tuples(value)
        try:
            run = RunConfig(**values)
            physics = Physics.from_json(data.get("physics", {}))
            plans = data.get("plans")
            stop_after = data.get("stop_after")
            if stop_after is not None and (type(stop_after) is not int or stop_after < 1):
                raise ConfigError(f"config.json: stop_after must be a positive integer, "
                                  f"not {stop_after!r}")  # fmt: skip
            return cls(run, physics,
                       None if plans is None else tuple(plan_from_json(p) for p in plans),
                       tuple(data.get("swarm", ())), data.get("shrunk_from"),
                       stop_after)  # fmt: skip
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            raise ConfigError(f"config.json: {type(exc).__name__}: {exc}") from None


def _tuples(value: Any) -> Any:
    """JSON lists back to the tuples a RunConfig holds (target_args: pairs)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def plan_to_json(plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(plan):
        value = getattr(plan, f.name)
        if f.name == "grudge" and value is not None:
            value = {n: sorted(srcs) for n, srcs in value.items()}
        elif isinstance(value, LinkFaults):
            value = value.to_json()
        elif isinstance(value, tuple):
            value = [list(v) if isinstance(v, tuple) else v for v in value]
        out[f.name] = value
    return out


def plan_from_json(data: dict[str, Any]) -> Plan:
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name == "grudge" and value is not None:
            value = {n: frozenset(srcs) for n, srcs in value.items()}
        elif name == "link_faults" and value is not None:
            value = LinkFaults.from_json(value)
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        values[name] = value
    return Plan(**values)

"""The nemesis schedule: a pure, seeded sequence of fault plans.

    plans = plan_schedule(("partition", "kill"), ["n1", "n2", "n3"], 5.0, random.Random(seed))

Every `interval` seconds (a step) the schedule may start one fault: it picks uniformly among the
selected fault kinds that are idle at that step. A fault stays in force for two steps, then its
matching stop runs (restart is instantaneous: kill and start at once). So at most one fault of
each kind is in force, different kinds overlap, and every kind rests at least one step between
two of its faults. `partition` and `churn` both decide which links are cut, so they count as one
kind here: never both in force. All choices — which fault, which variant, which nodes, which
probabilities — come from the rng passed in, so one seed gives one schedule. Targets that can
only be known while running (the current leader) are marked as such and carry a seeded fallback
node.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from splitbrain.cluster.faults import LinkFaults
from splitbrain.nemesis import grudges
from splitbrain.nemesis.grudges import Grudge
from splitbrain.raft import crashpoints
from splitbrain.raft.quorum import majority

FAULTS = ("partition", "kill", "pause", "restart", "net", "churn", "crash")
PARTITIONS = ("random-halves", "isolate-one", "isolate-leader", "majorities-ring", "bridge",
              "one-way")  # fmt: skip
TARGETS = ("one", "minority", "majority", "all", "leader")
NET_FAULTS = ("drop", "delay", "duplicate", "reorder")
CRASH_POINTS = tuple(crashpoints.POINTS)  # where an armed node kills itself
# churn: how long each new leader leads before it is isolated. 10-20 ms: long enough to commit
# what it brings (its first quorum round, a few ms), mostly too short for clients to have found
# it (they retry every 10 ms). 5 ms was too short to commit in most elections on 2 cores.
LEAD_TIMES = (0.01, 0.02)
HOLD_STEPS = 2  # a fault stays in force this many intervals
_SHARES = {"churn": "partition"}  # faults that use the same resource: never in force together


@dataclass(frozen=True, slots=True)
class Plan:
    """One fault: applied at `start`, undone at `stop` (seconds after the nemesis begins)."""

    start: float
    stop: float  # == start for an instantaneous fault (restart)
    fault: str  # one of FAULTS
    kind: str  # partition: one of PARTITIONS; kill/pause/restart/crash: TARGETS; net: NET_FAULTS;
    # churn: "new-leaders"
    grudge: Grudge | None = None  # partition; for isolate-leader, the grudge of the fallback
    nodes: tuple[str, ...] = ()  # kill/pause/restart targets; for leader kinds, the fallback
    links: tuple[tuple[str, str], ...] = ()  # net: directed links (src, dst)
    link_faults: LinkFaults | None = None  # net
    point: str | None = None  # crash: one of CRASH_POINTS
    lead: float = 0.0  # churn: seconds each new leader leads before it is isolated

    @property
    def needs_leader(self) -> bool:
        return self.kind in ("leader", "isolate-leader")


def variants(fault: str) -> tuple[str, ...]:
    """What `fault:VARIANT` may name: the kinds of a fault, or for crash its points and targets."""
    return {"partition": PARTITIONS, "net": NET_FAULTS, "churn": (),
            "crash": CRASH_POINTS + TARGETS}.get(fault, TARGETS)  # fmt: skip


def parse_faults(text: str, nodes: int | None = None) -> tuple[str, ...]:
    """'partition,kill' -> ("partition", "kill"); 'all' -> FAULTS; 'none' or '' -> ().

    A fault may be narrowed to some of its variants: 'kill:leader', 'partition:bridge+one-way',
    'crash:after-vote+all' (crash takes points and targets). ValueError names what is wrong,
    including variants that `nodes` nodes cannot have (rings, bridges, minorities need 3)."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["none"]:
        return ()
    chosen: dict[str, set[str] | None] = {}  # fault -> variants (None: all of them)
    for name in names:
        fault, _, rest = name.partition(":")
        if name == "all":
            chosen.update(dict.fromkeys(FAULTS))
            continue
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r} (known: {', '.join(FAULTS)}, all, none)")
        wanted = {v.strip() for v in rest.split("+") if v.strip()} if rest else None
        for v in sorted(wanted or ()):
            if v not in variants(fault):
                known = ", ".join(variants(fault)) or "none"
                raise ValueError(f"{fault} has no variant {v!r} (known: {known})")
            if nodes is not None and nodes < 3 and v in ("majorities-ring", "bridge", "minority"):
                raise ValueError(f"{fault}:{v} needs at least 3 nodes")
        if fault in chosen:
            before = chosen[fault]
            wanted = None if before is None or wanted is None else before | wanted
        chosen[fault] = wanted
    return tuple(f if v is None else f"{f}:{'+'.join(sorted(v))}" for f, v in chosen.items())


def plan_schedule(
    faults: Iterable[str], nodes: Sequence[str], interval: float, rng: random.Random
) -> Iterator[Plan]:
    """An endless sequence of plans, in order of start time (empty if no faults). `faults` as
    parse_faults returns them: a fault narrowed to variants ('kill:leader') plans only those."""
    narrowed = {f: set(v.split("+")) if v else None
                for f, _, v in (spec.partition(":") for spec in parse_faults(",".join(faults)))}
    faults = tuple(narrowed)
    if faults and not interval > 0:
        raise ValueError(f"the nemesis interval must be positive, got {interval}")
    if not faults or not nodes:
        return
    busy_until = {_SHARES.get(f, f): 0.0 for f in faults}
    step = 0
    while True:
        step += 1
        t = round(step * float(interval), 6)  # 1.2, not 1.2000000000000002
        idle = [f for f in faults if busy_until[_SHARES.get(f, f)] < t]
        if not idle:
            continue
        fault = rng.choice(idle)
        hold = 0.0 if fault == "restart" else HOLD_STEPS * interval
        busy_until[_SHARES.get(fault, fault)] = t + hold
        yield _plan(fault, t, t + hold, list(nodes), rng, narrowed[fault])


def _plan(fault: str, start: float, stop: float, nodes: list[str], rng: random.Random,
          only: set[str] | None = None) -> Plan:  # fmt: skip
    def pick(choices: Sequence[str]) -> str:
        return rng.choice([c for c in choices if only is None or c in only] or choices)

    if fault == "partition":
        kind = pick(_partitions(len(nodes)))
        grudge = partition(kind, nodes, rng)
        # isolate-leader: the fallback is the node the seeded grudge isolates.
        fallback = tuple(n for n in nodes if len(grudge[n]) == len(nodes) - 1)[:1]
        nodes_ = fallback if kind == "isolate-leader" else ()
        return Plan(start, stop, fault, kind, grudge=grudge, nodes=nodes_)
    if fault == "net":
        kind = pick(NET_FAULTS)
        links = tuple((s, d) for s in nodes for d in nodes if s != d)
        return Plan(start, stop, fault, kind, links=links, link_faults=net_faults(kind, rng))
    if fault == "churn":
        return Plan(start, stop, fault, "new-leaders", lead=rng.choice(LEAD_TIMES))
    kind = pick([t for t in TARGETS if t != "minority" or len(nodes) >= 3])
    point = pick(CRASH_POINTS) if fault == "crash" else None
    return Plan(start, stop, fault, kind, nodes=targets(kind, nodes, rng), point=point)


def _partitions(count: int) -> list[str]:
    # Rings and bridges need three nodes to mean anything.
    return [p for p in PARTITIONS if count >= 3 or p not in ("majorities-ring", "bridge")]


def partition(kind: str, nodes: Sequence[str], rng: random.Random) -> Grudge:
    """The grudge of a partition kind; nodes are shuffled by `rng` first."""
    shuffled = rng.sample(list(nodes), len(nodes))
    if kind == "random-halves":
        return grudges.complete_grudge(grudges.bisect(shuffled))
    if kind in ("isolate-one", "isolate-leader"):  # isolate-leader: a fallback until applied
        return grudges.isolate(nodes, shuffled[0])
    if kind == "majorities-ring":
        return grudges.majorities_ring(shuffled)
    if kind == "bridge":
        return grudges.bridge(shuffled)
    if kind == "one-way":
        return grudges.one_way(nodes, grudges.bisect(shuffled)[0] or shuffled[:1])
    raise ValueError(f"unknown partition {kind!r} (known: {', '.join(PARTITIONS)})")


def targets(kind: str, nodes: Sequence[str], rng: random.Random) -> tuple[str, ...]:
    """Nodes to kill or pause; for "leader", one fallback node used if no leader is known."""
    count = len(nodes)
    size = {"one": 1, "leader": 1, "minority": (count - 1) // 2, "majority": majority(count),
            "all": count}[kind]  # fmt: skip
    return tuple(sorted(rng.sample(list(nodes), max(size, 1)), key=list(nodes).index))


def net_faults(kind: str, rng: random.Random) -> LinkFaults:
    """Probabilities and delays for a net fault, drawn from a few values worth trying."""
    if kind == "drop":
        return LinkFaults(drop=rng.choice((0.1, 0.25, 0.5)))
    if kind == "delay":
        delay = rng.choice((0.01, 0.05, 0.1))
        return LinkFaults(delay=delay, jitter=delay)
    if kind == "duplicate":
        return LinkFaults(duplicate=rng.choice((0.1, 0.3, 0.5)))
    if kind == "reorder":
        return LinkFaults(reorder=rng.choice((0.1, 0.3, 0.5)))
    raise ValueError(f"unknown net fault {kind!r} (known: {', '.join(NET_FAULTS)})")

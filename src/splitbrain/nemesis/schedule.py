"""The nemesis schedule: a pure, seeded sequence of fault plans.

    plans = plan_schedule(("partition", "kill"), ["n1", "n2", "n3"], 5.0, random.Random(seed))

Faults run on independent timelines, one per fault kind, so faults of different kinds overlap
(a partition during a kill, a pause during a partition): a fault is held for its `hold`, then
its kind rests for its `gap` before the next one (restart is instantaneous: kill and start at
once). `partition` and `churn` both decide which links are cut, so they share one timeline:
never both in force. Holds and gaps are whole or half `interval`s.

Swarm testing: time is cut into epochs of EPOCH_STEPS intervals. With more than MIX_MAX kinds
selected, each epoch runs a mix of two or three of them, dealt from a seeded, shuffled deck, so
every selected kind comes up once before any comes up twice (a 75 s run at a 3 s interval
deals five epochs, at least ten kinds: every kind of `all`; the bundled Raft's 0.5 s deals
that many in 12.5 s); each kind draws its own hold and gap per epoch. A run thus concentrates
a few faults at a time instead of spreading thin, and seeds differ in their mixes and rates.
Every kind dealt to an epoch starts in that epoch.

All choices — mixes, rates, which fault, which variant, which nodes, which probabilities —
come from the rng passed in, so one seed gives one schedule. Targets that can only be known
while running (the current leader, the next leader) are marked as such and carry a seeded
fallback node. Which faults and variants a target can take is decided before (targets/faults.py
narrows them; the aimed net faults, AIMED_NET, need the bundled Raft's message format).
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass

from splitbrain.cluster.faults import LinkFaults
from splitbrain.nemesis import grudges
from splitbrain.nemesis.grudges import Grudge
from splitbrain.nemesis.interval import interval_problem
from splitbrain.raft import crashpoints
from splitbrain.raft.quorum import majority

DISK_FAULTS = ("power-loss", "corrupt", "disk-full")  # need a target with the disk capability
FAULTS = ("partition", "kill", "pause", "restart", "net", "churn", "crash", "clock", *DISK_FAULTS)
# What `all` means: every fault but clock, which is named to be had (`--nemesis all,clock`).
# When the interval was 3 s, a 60 s run dealt about ten fault slots over the kinds of `all`;
# with clock among them the mutation bench caught 18 of 34 bugs (seed 1) against 19 and 20
# without it (seeds 1, 2), and no read bug more, so it stays out until it is shown to find more
# than it displaces. Judged again in the simulator's stand-in for `all` (bench/mutants.py's
# sim-all, seeds 1-12, once with SIM_ALL's `--nemesis all,clock`, clock:drift for lease
# mutants): 277 of 516 mutant-seeds failed with clock against 279 without, 33 mutants caught
# either way.
ALL = tuple(f for f in FAULTS if f != "clock")
PARTITIONS = ("random-halves", "isolate-one", "isolate-leader", "majorities-ring", "bridge",
              "one-way")  # fmt: skip
TARGETS = ("one", "minority", "majority", "all", "leader")
NEED_THREE = ("majorities-ring", "bridge", "minority")  # variants a cluster of 1 or 2 lacks
# How often each target is drawn: a quorum stays up in three kills (pauses, crashes) of four.
# Most bugs need a working majority whose leaders change; taking a majority or all down mostly
# tests recovery, which costs seconds of node starts and which crash points reach sharper.
TARGET_WEIGHTS = {"one": 2, "minority": 2, "leader": 2, "majority": 1, "all": 1}
# churn: each new leader is isolated, or cut off with a minority of followers (it then
# replicates to them only: competing uncommitted suffixes, the raw material of Figure 8).
CHURNS = ("isolate", "minority")
# Pauses timed by role events: the leader right after its election, or right after a client
# request was sent to the cluster (it reached the leader or is about to).
LEADER_PAUSES = ("new-leader", "after-request")
# Net faults; AIMED_NET read the bundled Raft's message headers (cluster/faults.py): acks are
# append responses, heartbeats include their responses (ReadIndex rounds).
AIMED_NET = ("drop-acks", "delay-acks", "drop-heartbeats", "delay-heartbeats", "replay-appends",
             "term-reorder")  # fmt: skip
NET_FAULTS = ("drop", "delay", "duplicate", "reorder", *AIMED_NET)
CRASH_POINTS = tuple(crashpoints.POINTS)  # where an armed node kills itself
# Clock faults (cluster/clocks.py): the targets' clocks run slow or fast for the hold, jump by
# an offset (taken back at the stop), or strobe: jump forth and back every STROBE_PERIOD (a
# node rereads its clock once a second). A slow leader heartbeats and steps down late, and
# its lease outlives it; a fast follower calls elections early; a jump back stalls timers.
# drift: the targets' clocks run 10% slow or fast, the drift real oscillators and schedulers
# have and a lease that bounds drift (the bundled Raft's: drift_percent 10, against the other
# nodes' clocks) must survive, where slow and fast break any lease by design.
CLOCKS = ("slow", "fast", "offset", "strobe", "drift")
CLOCK_RATES = {"slow": (0.1, 0.25, 0.5), "fast": (2.0, 4.0, 10.0), "drift": (0.9, 1.1)}
CLOCK_JUMPS = {"offset": (-2.0, -0.5, -0.2, 0.2, 0.5, 2.0), "strobe": (0.2, 0.5, 2.0)}
STROBE_PERIOD = 1.0
# churn: how long each new leader leads before it is isolated. 10-20 ms: long enough to commit
# what it brings (its first quorum round, a few ms), mostly too short for clients to have found
# it (they retry every 10 ms). 5 ms was too short to commit in most elections on 2 cores.
# Leader pauses wait as long after an election.
LEAD_TIMES = (0.01, 0.02)
# How long a leader pause lasts: around an election timeout (150-300 ms by default) and below
# a client's op timeout (1 s), so requests queued at the paused leader are answered by it,
# deposed or not, once it resumes.
PAUSE_TIMES = (0.2, 0.5, 0.8)
# How often a partition or churn stalls its links instead of dropping what they carry (the
# link proxy's two cuts): a firewall that drops packets of live TCP connections stalls them, and
# the backlog — acknowledgements, heartbeats and votes of an old term — arrives after the heal,
# in order. That is when a deposed leader hears late that a quorum still followed it.
STALL_SHARE = 0.5
# Disk faults (cluster/disks.py): a power loss is a kill -9 that also forgets what the targets
# never synced; corrupt flips a bit of a stopped target's file or cuts it short (the
# damage_seed picks which, and where) and starts it again at once; disk-full fails their
# writes with ENOSPC for the hold.
INSTANT = ("restart", "corrupt")  # faults with no hold: applied and undone at once
EPOCH_STEPS = 5  # intervals per swarm epoch
# The deck holds each kind once. Dealing partition, churn and crash twice, as the simulator's
# swarm draws them (sim/swarm.py WEIGHTS), moved no total: over the corpus it failed 363 of
# 656 mutant-seeds against 367 (`bench/mutants.py --configs sim-all --sim-seeds 16`), catches
# traded between kinds.
MIX_MAX = 3  # with more kinds selected, each epoch runs a mix of MIX_SIZES of them
MIX_SIZES = (2, 3)
HOLD_STEPS = (1.0, 2.0)  # how long a fault is held, in intervals: drawn per kind per epoch
# Churn held twice as long (runs of leaders cut off in a row: at 0.5 s an election under churn
# takes most of an interval, so a hold cuts off one or two) doubled how often the Figure 8 bug
# `--unsafe commit-old-terms` showed in `all`'s schedule (sim, 10 s seeds 1-80: 13 failed
# against 7) but moved nothing over the corpus: 370 of 656 mutant-seeds failed against 372
# (`bench/mutants.py --configs sim-all --sim-seeds 16` on each version), catches traded
# between mutants (the persist-vote ones fell from 19 to 8). That is tuning to one bug, so
# churn holds as the other faults do.
GAP_STEPS = (0.5, 1.0, 2.0)  # rest before the next fault of a kind, in intervals: the same
_SHARES = {"churn": "partition"}  # faults that use the same resource: one timeline


@dataclass(frozen=True, slots=True)
class Plan:
    """One fault: applied at `start`, undone at `stop` (seconds after the nemesis begins)."""

    start: float
    stop: float  # == start for an instantaneous fault (restart)
    fault: str  # one of FAULTS
    kind: str  # partition: one of PARTITIONS; kill/restart/crash/clock: TARGETS; pause: TARGETS
    # or LEADER_PAUSES; net: NET_FAULTS; churn: CHURNS; DISK_FAULTS: TARGETS
    grudge: Grudge | None = None  # partition; for isolate-leader, the grudge of the fallback
    stall: bool = False  # partition, churn: cut links stall (nothing lost) instead of dropping
    nodes: tuple[str, ...] = ()  # kill/pause/restart targets; for leader kinds, the fallback
    links: tuple[tuple[str, str], ...] = ()  # net: directed links (src, dst)
    link_faults: LinkFaults | None = None  # net
    point: str | None = None  # crash: one of CRASH_POINTS
    lead: float = 0.0  # churn, pause new-leader: seconds a new leader leads before the fault
    pause_for: float = 0.0  # leader pauses: seconds each one lasts (PAUSE_TIMES)
    rate: float = 1.0  # clock: the rate the targets' clocks run at (CLOCK_RATES)
    clock: str = ""  # clock: the variant, one of CLOCKS
    jump: float = 0.0  # clock offset: seconds the clocks jump; strobe: how far (CLOCK_JUMPS)
    damage_seed: int = 0  # corrupt: picks the file, the damage and where (cluster/damage.py)

    @property
    def needs_leader(self) -> bool:
        return self.kind in ("leader", "isolate-leader")


def variants(fault: str) -> tuple[str, ...]:
    """What `fault:VARIANT` may name: the kinds of a fault, or for crash its points and targets."""
    return {"partition": PARTITIONS, "net": NET_FAULTS, "churn": CHURNS,
            "crash": CRASH_POINTS + TARGETS, "pause": TARGETS + LEADER_PAUSES,
            "clock": CLOCKS + TARGETS,
            }.get(fault, TARGETS)  # fmt: skip


def parse_faults(text: str, nodes: int | None = None) -> tuple[str, ...]:
    """'partition,kill' -> ("partition", "kill"); 'all' -> ALL; 'none' or '' -> ().

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
            chosen.update(dict.fromkeys(ALL))
            continue
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r} (known: {', '.join(FAULTS)}, all, none)")
        wanted = {v.strip() for v in rest.split("+") if v.strip()} if rest else None
        for v in sorted(wanted or ()):
            if v not in variants(fault):
                known = ", ".join(variants(fault)) or "none"
                raise ValueError(f"{fault} has no variant {v!r} (known: {known})")
            if nodes is not None and nodes < 3 and v in NEED_THREE:
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
    kinds = tuple(narrowed)
    problem = interval_problem(interval) if kinds else None
    if problem:
        raise ValueError(f"the nemesis interval {problem}")
    if not kinds or not nodes:
        return
    interval = float(interval)
    free = {timeline(f): 0.0 for f in kinds}  # when each timeline may start again
    deck: list[str] = []
    epoch = 0
    while True:
        t0, t1 = epoch * EPOCH_STEPS * interval, (epoch + 1) * EPOCH_STEPS * interval
        epoch += 1
        mix = _deal(deck, kinds, rng) if is_swarm(kinds) else kinds
        plans = []
        for resource in sorted({timeline(f) for f in mix}, key=list(free).index):
            candidates = [f for f in mix if timeline(f) == resource]
            hold = rng.choice(HOLD_STEPS) * interval
            gap = rng.choice(GAP_STEPS) * interval
            t = _round(max(free[resource], t0 + rng.uniform(0.0, interval)))
            while t < t1:
                fault = rng.choice(candidates)
                stop = t if fault in INSTANT else t + hold
                plans.append(_plan(fault, t, _round(stop), list(nodes), rng, narrowed[fault]))
                t = free[resource] = _round(stop + gap)
        yield from sorted(plans, key=lambda p: (p.start, FAULTS.index(p.fault)))


def is_swarm(kinds: Collection[str]) -> bool:
    """Whether a schedule of these fault kinds is a swarm (more than MIX_MAX): it deals each
    epoch a mix of them, and a run draws its nodes' knobs per seed too (run.py)."""
    return len(kinds) > MIX_MAX


def timeline(fault: str) -> str:
    """The timeline a fault kind runs on: its own, or the one it shares (churn: partition)."""
    return _SHARES.get(fault, fault)


def _deal(deck: list[str], kinds: Sequence[str], rng: random.Random) -> list[str]:
    """The next epoch's mix: MIX_SIZES kinds off the top of the deck (its end), at most one per
    timeline; a card that does not fit stays on top for the next epoch, and a fresh shuffle
    goes under the deck whenever it runs short."""
    size = min(rng.choice(MIX_SIZES), len({timeline(k) for k in kinds}))
    mix: list[str] = []
    while len(mix) < size:
        taken = {timeline(m) for m in mix}
        fits = [i for i in range(len(deck) - 1, -1, -1) if timeline(deck[i]) not in taken]
        if fits:
            mix.append(deck.pop(fits[0]))
        else:
            deck[:0] = rng.sample(list(kinds), len(kinds))
    return mix


def _round(t: float) -> float:
    return round(t, 3)  # milliseconds: 1.2, not 1.2000000000000002


def _plan(fault: str, start: float, stop: float, nodes: list[str], rng: random.Random,
          only: set[str] | None = None) -> Plan:  # fmt: skip
    def pick(choices: Sequence[str]) -> str:
        allowed = [c for c in choices if only is None or c in only] or list(choices)
        return rng.choices(allowed, [TARGET_WEIGHTS.get(c, 2) for c in allowed])[0]

    if fault == "partition":
        kind = pick(_partitions(len(nodes)))
        grudge = partition(kind, nodes, rng)
        # isolate-leader: the fallback is the node the seeded grudge isolates.
        fallback = tuple(n for n in nodes if len(grudge[n]) == len(nodes) - 1)[:1]
        nodes_ = fallback if kind == "isolate-leader" else ()
        return Plan(start, stop, fault, kind, grudge=grudge, nodes=nodes_,
                    stall=rng.random() < STALL_SHARE)  # fmt: skip
    if fault == "net":
        kind = pick(NET_FAULTS)
        links = tuple((s, d) for s in nodes for d in nodes if s != d)
        return Plan(start, stop, fault, kind, links=links, link_faults=net_faults(kind, rng))
    if fault == "churn":
        return Plan(start, stop, fault, pick(CHURNS), lead=rng.choice(LEAD_TIMES),
                    stall=rng.random() < STALL_SHARE)  # fmt: skip
    targets_ = [t for t in TARGETS if t != "minority" or len(nodes) >= 3]
    if fault == "pause":
        kind = pick(targets_ + list(LEADER_PAUSES))
        if kind in LEADER_PAUSES:
            return Plan(start, stop, fault, kind, lead=rng.choice(LEAD_TIMES),
                        pause_for=rng.choice(PAUSE_TIMES))  # fmt: skip
    else:
        kind = pick(targets_)
    point = pick(CRASH_POINTS) if fault == "crash" else None
    clock, rate, jump = "", 1.0, 0.0
    if fault == "clock":
        clock = pick(CLOCKS)
        if clock in CLOCK_RATES:
            rate = rng.choice(CLOCK_RATES[clock])
        else:
            jump = rng.choice(CLOCK_JUMPS[clock])
    damage_seed = rng.randrange(2**32) if fault == "corrupt" else 0
    return Plan(start, stop, fault, kind, nodes=targets(kind, nodes, rng), point=point, rate=rate,
                clock=clock, jump=jump, damage_seed=damage_seed)  # fmt: skip


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


ACKS = ("app-resp",)
HEARTBEATS = ("heartbeat", "heartbeat-resp")


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
    if kind in ("drop-acks", "drop-heartbeats"):
        aimed = ACKS if kind == "drop-acks" else HEARTBEATS
        return LinkFaults(drop=rng.choice((0.25, 0.5, 0.9)), kinds=aimed)
    if kind in ("delay-acks", "delay-heartbeats"):
        aimed = ACKS if kind == "delay-acks" else HEARTBEATS
        delay = rng.choice((0.05, 0.2, 0.5))  # beyond a heartbeat, up to past an election
        return LinkFaults(delay=delay, jitter=delay / 2, kinds=aimed)
    if kind == "replay-appends":
        return LinkFaults(replay=rng.choice((0.1, 0.3, 0.5)), kinds=("app",))
    if kind == "term-reorder":
        return LinkFaults(hold_term=rng.choice((0.1, 0.3, 0.5)))
    raise ValueError(f"unknown net fault {kind!r} (known: {', '.join(NET_FAULTS)})")

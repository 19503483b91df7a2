"""Swarm testing: each seed draws its own configuration — faults, rates, sizes, timing.

    config = draw(seed, pinned={"nodes": 5}, base=RunConfig(...))

A run that spreads itself over every fault kind at once is thin everywhere; many runs that each
concentrate on a few kinds, at their own rates, reach more corners (Groce et al., "Swarm
testing", ISSTA 2012). Every setting the caller did not pin is drawn from
`random.Random(f"{seed}:swarm")`, so a seed names one configuration; `SimConfig.swarm` lists the
drawn ones. The choices below are values worth trying, not a distribution to be faithful to.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from splitbrain.config import RunConfig
from splitbrain.nemesis.schedule import FAULTS, NEED_THREE, variants
from splitbrain.sim.config import SimConfig
from splitbrain.sim.world import Physics
from splitbrain.targets.knobs import RAFT_KNOBS, node_option

# Cluster sizes. Quorum arithmetic goes wrong only with 5 (two seeds in five). One node is its
# own quorum: it commits on its own fsync alone, so every durability rule of the leader's disk
# shows at once (a single-node seed costs a third of a 3-node one).
NODES = (1, 3, 3, 5, 5)
TIME_LIMITS = (2.0, 3.0, 4.0, 6.0)  # seconds of clients + faults (virtual)
INTERVALS = (0.1, 0.2, 0.3, 0.5, 1.0)  # seconds between fault changes
RATES = (40.0, 80.0, 150.0)  # operations per second, all clients together
OP_TIMEOUTS = (0.25, 0.5, 1.0)
WORKLOADS = ("register", "kv")
KINDS = (1, 2, 2, 3, 3, 4)  # how many fault kinds a run draws
# Partitions, leader churn and crash points find the most per simulated second (they aim at
# the instants elections and persistence go wrong): drawn twice as often as the others.
WEIGHTS = {"partition": 2, "churn": 2, "crash": 2}
NARROW = 0.3  # chance that a drawn fault is narrowed to one of its variants
LATENCIES = ((0.00005, 0.0005), (0.0001, 0.002), (0.0005, 0.008))  # one-way network delay
DISKS = ((0.0001, 0.001), (0.0005, 0.004), (0.002, 0.02))  # a WAL write + fsync
BOOTS = ((0.005, 0.05), (0.02, 0.3))  # process start
# Heavy tails (chance, longest): real networks stall a stream now and then (a retransmission:
# a message arrives after a term change), real fsyncs take from 0.1 ms to tens of ms and now and
# then far longer (a leader's own fsync ends after a follower's acknowledgement).
LATENCY_TAILS = ((0.0, 0.0), (0.01, 0.05), (0.005, 0.3))
DISK_TAILS = ((0.0, 0.0), (0.02, 0.05), (0.01, 0.3))
# The share of reads in the workload: the default mix (generator.READS) in half the seeds.
# Read-heavy seeds keep clients reading where a few writes would leave each one waiting out a
# write to a leader that can no longer commit, and so reach a deposed leader while it still
# believes it leads (read-quorum-off-by-one: 2 failing seeds of 600 with this draw, 0 of 500
# without; 64 of 300 against 14 with five nodes and partitions into halves).
READS = (0.4, 0.85)
# Election timeouts at the edge of their range (world.TimerEdges: EARLIEST,LATEST chances): in
# a third of the seeds every timeout is the earliest one allowed. A successor elected the
# moment its voters may first time out is where a lease or a vote withheld a tick too briefly
# shows, and it needs every voter early: uniform draws give that to two voters once in
# election_tick² (with every timeout earliest lease-no-drift failed 3 of 2,654 seeds and
# lease-from-response 2 of 2,670, without 0 of 2,743 and 0 of 2,671; the correct Raft had no
# false alarm and no unknown verdict either way).
TIMEOUTS = ((0.0, 0.0), (0.0, 0.0), (1.0, 0.0))

# Faults that act on links: a single node has none.
LINK_FAULTS = ("partition", "net", "churn")
# What `--nemesis all` means: every fault of `run` but clock, as `all` is there (schedule.ALL).
# The disk faults are disk.py's: SimDisk.power_loss, SimDisk.damage and SimDisk.full.
SIM_FAULTS = tuple(f for f in FAULTS if f != "clock")
# What the swarm draws from: those and clock (per-process clocks, loop.py). A leader whose clock
# runs slow (or whose followers' run fast) keeps believing it leads long after a successor
# commits: the window in which a deposed leader serves reads, which a partition alone opens for
# a few milliseconds at best (a seed concentrates on its few kinds, so one more kind in the pool
# costs the others little). Nodes whose reads rest on a bound on clock drift (leases,
# `--read-mode lease`) get only `clock:drift`, within that bound: slow and fast clocks break an
# assumption of theirs, not their code, while a drift the lease claims to bound must not.
SWARM_FAULTS = (*SIM_FAULTS, "clock")
LEASE_CLOCKS = "clock:drift"

# What can be drawn, in the order it is drawn (pinning one does not shift the others' draws).
SETTINGS = ("nodes", "time_limit", "concurrency", "rate", "workload", "nemesis",
            "nemesis_interval", "op_timeout", "latency", "disk", "boot", "latency_tail",
            "disk_tail", "snapshot_every", "reads", "timeouts", "batch", "chunk")  # fmt: skip
PHYSICS = ("latency", "disk", "boot", "latency_tail", "disk_tail", "timeouts")


def draw(seed: int, pinned: dict[str, Any], base: RunConfig) -> SimConfig:
    """The configuration of `seed`: `pinned` settings as given, the others drawn. RAFT_KNOBS
    are drawn into the nodes' arguments, each unless those name its option already."""
    rng = random.Random(f"{seed}:swarm")
    leased = node_option(base.node_args, "--read-mode") == "lease"
    drawn: dict[str, Any] = {}
    for name, knob in RAFT_KNOBS.items():
        if node_option(base.node_args, knob.option) is not None:
            pinned = {**pinned, name: None}
    for name in SETTINGS:
        value = _draw(name, rng, {**drawn, **pinned}, leased)  # always: keeps the stream aligned
        if name not in pinned:
            drawn[name] = value
    values = {**drawn, **pinned}
    physics = Physics(**{k: values[k] for k in PHYSICS})
    knobs = [f"{knob.option}={value}" for name, knob in RAFT_KNOBS.items()
             if (value := values.pop(name, None))]  # fmt: skip
    if knobs:
        values["node_args"] = (*base.node_args, *knobs)
    run = replace(base, seed=seed, **{k: v for k, v in values.items() if k not in PHYSICS})
    return SimConfig(run, physics, swarm=tuple(n for n in SETTINGS if n in drawn))


def _draw(name: str, rng: random.Random, so_far: dict[str, Any], leased: bool) -> Any:
    if name == "nodes":
        return rng.choice(NODES)
    if name == "time_limit":
        return rng.choice(TIME_LIMITS)
    if name == "concurrency":
        return rng.randint(2, 2 * so_far["nodes"])
    if name == "rate":
        return rng.choice(RATES)
    if name == "workload":
        return rng.choice(WORKLOADS)
    if name == "nemesis":
        return faults(rng, leased, so_far["nodes"])
    if name == "nemesis_interval":
        return rng.choice(INTERVALS)
    if name == "op_timeout":
        return rng.choice(OP_TIMEOUTS)
    if name in RAFT_KNOBS:
        return rng.choice(RAFT_KNOBS[name].choices)
    if name == "reads":
        return rng.choice(READS)
    return rng.choice({"latency": LATENCIES, "disk": DISKS, "boot": BOOTS,
                       "latency_tail": LATENCY_TAILS, "disk_tail": DISK_TAILS,
                       "timeouts": TIMEOUTS}[name])


def faults(rng: random.Random, leased: bool, nodes: int) -> tuple[str, ...]:
    """A few fault kinds (a run that concentrates on them reaches their corners), drawn by
    WEIGHTS, some narrowed to one variant; clock only drifts if the nodes serve leases; a
    single node draws no link faults."""
    pool = [f for f in SWARM_FAULTS for _ in range(WEIGHTS.get(f, 1))
            if nodes > 1 or f not in LINK_FAULTS]  # fmt: skip
    picked: set[str] = set()
    for _ in range(rng.choice(KINDS)):
        picked.add(rng.choice([f for f in pool if f not in picked] or pool))
    chosen = [f for f in FAULTS if f in picked]  # in FAULTS' order
    out = []
    for fault in chosen:
        options = [v for v in variants(fault) if nodes >= 3 or v not in NEED_THREE]
        if leased and fault == "clock":
            out.append(LEASE_CLOCKS)
        elif options and rng.random() < NARROW:
            out.append(f"{fault}:{rng.choice(options)}")
        else:
            out.append(fault)
    return tuple(out)

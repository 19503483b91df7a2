"""The schedule is pure and seeded: same seed, same plans; every kind and variant reachable;
faults overlap, and each seed runs its own mixes (swarm) that reach every kind in a bounded run."""

from __future__ import annotations

import itertools
import random

import pytest

from splitbrain.nemesis.interval import MIN_INTERVAL
from splitbrain.nemesis.schedule import (
    ALL,
    CHURNS,
    CLOCK_JUMPS,
    CLOCK_RATES,
    CLOCKS,
    CRASH_POINTS,
    DISK_FAULTS,
    EPOCH_STEPS,
    FAULTS,
    GAP_STEPS,
    HOLD_STEPS,
    INSTANT,
    LEAD_TIMES,
    LEADER_PAUSES,
    NET_FAULTS,
    PARTITIONS,
    PAUSE_TIMES,
    TARGETS,
    Plan,
    parse_faults,
    plan_schedule,
)

NODES = ["n1", "n2", "n3", "n4", "n5"]


def plans(
    faults: tuple[str, ...] = FAULTS,
    nodes: list[str] = NODES,
    interval: float = 2.0,
    seed: int = 1,
    count: int = 200,
) -> list[Plan]:
    schedule = plan_schedule(faults, nodes, interval, random.Random(seed))
    return list(itertools.islice(schedule, count))


def until(t: float, seed: int, faults: tuple[str, ...] = FAULTS, interval: float = 3.0
          ) -> list[Plan]:  # fmt: skip
    """The plans that start before `t` seconds."""
    schedule = plan_schedule(faults, NODES, interval, random.Random(seed))
    return list(itertools.takewhile(lambda p: p.start < t, schedule))


def test_parse_faults() -> None:
    assert parse_faults("partition, kill,partition") == ("partition", "kill")
    assert parse_faults("all") == ALL == tuple(f for f in FAULTS if f != "clock")
    assert sorted(parse_faults("all,clock")) == sorted(FAULTS)
    assert parse_faults("none") == () == parse_faults("")
    with pytest.raises(ValueError, match="unknown fault 'flood'"):
        parse_faults("kill,flood")


def test_a_fault_can_be_narrowed_to_some_of_its_variants() -> None:
    assert parse_faults("kill:leader, crash:all+after-vote,kill:one") == (
        "kill:leader+one", "crash:after-vote+all")
    assert parse_faults("kill:leader,kill") == ("kill",)
    with pytest.raises(ValueError, match="kill has no variant 'bridge' \\(known: one, "):
        parse_faults("kill:bridge")
    with pytest.raises(ValueError, match="churn has no variant 'x' \\(known: isolate, minority\\)"):
        parse_faults("churn:x")
    assert {p.kind for p in plans(("churn:minority",), count=20)} == {"minority"}
    with pytest.raises(ValueError, match="partition:bridge needs at least 3 nodes"):
        parse_faults("partition:bridge", nodes=2)
    ps = plans(("partition:bridge+one-way", "crash:after-vote", "kill:leader"), count=300)
    assert {p.kind for p in ps if p.fault == "partition"} == {"bridge", "one-way"}
    assert {p.point for p in ps if p.fault == "crash"} == {"after-vote"}
    assert {p.kind for p in ps if p.fault == "crash"} == set(TARGETS)  # targets not narrowed
    assert {p.kind for p in ps if p.fault == "kill"} == {"leader"}


def test_same_seed_same_schedule_other_seed_other_schedule() -> None:
    assert plans(seed=3) == plans(seed=3)
    assert plans(seed=3) != plans(seed=4)


def test_plans_come_in_start_order() -> None:
    ps = plans(interval=1.5)
    assert [p.start for p in ps] == sorted(p.start for p in ps)


def test_at_most_one_fault_of_each_kind_in_force_and_a_rest_between() -> None:
    for seed in range(20):
        ps = plans(seed=seed)
        for fault in FAULTS:
            mine = [p for p in ps if p.fault == fault]
            for a, b in itertools.pairwise(mine):
                assert b.start - a.stop >= min(GAP_STEPS) * 2.0 - 1e-6
        for p in ps:
            holds = {0.0} if p.fault in INSTANT else {h * 2.0 for h in HOLD_STEPS}
            assert round(p.stop - p.start, 6) in holds


def test_partition_and_churn_are_never_in_force_together() -> None:
    ps = [p for p in plans(count=2000) if p.fault in ("partition", "churn")]
    assert {p.fault for p in ps} == {"partition", "churn"}
    for a, b in itertools.pairwise(ps):
        assert b.start > a.stop


def test_every_variant_is_reachable_with_the_right_targets() -> None:
    ps = plans(count=3000)
    seen = {(p.fault, p.kind) for p in ps}
    assert {("partition", k) for k in PARTITIONS} <= seen
    assert {("net", k) for k in NET_FAULTS} <= seen
    for f in ("kill", "pause", "restart", "crash", *DISK_FAULTS):
        assert {(f, k) for k in TARGETS} <= seen
    assert len({p.damage_seed for p in ps if p.fault == "corrupt"}) > 1
    assert {("pause", k) for k in LEADER_PAUSES} <= seen
    assert {p.point for p in ps if p.fault == "crash"} == set(CRASH_POINTS)
    assert {p.lead for p in ps if p.fault == "churn"} == set(LEAD_TIMES)
    assert {p.kind for p in ps if p.fault == "churn"} == set(CHURNS)
    kills = [p for p in ps if p.fault in ("kill", "restart", "crash")]
    down = sum(p.kind in ("majority", "all") for p in kills) / len(kills)
    assert 0.15 < down < 0.35  # a quorum stays up in three kills of four (TARGET_WEIGHTS)
    leader_pauses = [p for p in ps if p.kind in LEADER_PAUSES]
    assert {p.pause_for for p in leader_pauses} == set(PAUSE_TIMES)
    assert all(p.lead in LEAD_TIMES and not p.nodes for p in leader_pauses)
    sizes = {"one": 1, "leader": 1, "minority": 2, "majority": 3, "all": 5}
    for p in ps:
        if p.fault in ("kill", "pause", "restart", "crash") and p.kind not in LEADER_PAUSES:
            assert len(p.nodes) == sizes[p.kind] and set(p.nodes) <= set(NODES)
        if p.fault == "partition":
            assert p.grudge is not None and set(p.grudge) == set(NODES)
        if p.kind == "isolate-leader":
            (fallback,) = p.nodes
            assert p.grudge is not None and p.grudge[fallback] == set(NODES) - {fallback}
        if p.fault == "net":
            assert len(p.links) == 20 and p.link_faults is not None and p.link_faults.active()
            aimed = p.kind in ("drop-acks", "delay-acks", "drop-heartbeats", "delay-heartbeats",
                               "replay-appends")
            assert bool(p.link_faults.kinds) == aimed


def test_clock_plans_carry_their_variant_and_its_rate_or_jump() -> None:
    ps = plans(("clock",), count=400)
    assert {p.clock for p in ps} == set(CLOCKS)
    for p in ps:
        if p.clock in CLOCK_RATES:
            assert p.rate in CLOCK_RATES[p.clock] and p.jump == 0.0
        else:
            assert p.jump in CLOCK_JUMPS[p.clock] and p.rate == 1.0
    assert {p.jump for p in ps if p.clock == "offset"} == set(CLOCK_JUMPS["offset"])
    narrowed = plans(("clock:strobe+leader",), count=50)
    assert {(p.clock, p.kind) for p in narrowed} == {("strobe", "leader")}


def test_only_the_selected_faults_are_planned() -> None:
    assert {p.fault for p in plans(faults=("pause",))} == {"pause"}
    assert plans(faults=()) == []


def test_small_clusters_get_no_meaningless_partitions() -> None:
    ps = plans(faults=("partition", "kill"), nodes=["n1", "n2"], count=300)
    kinds = {p.kind for p in ps}
    assert not kinds & {"majorities-ring", "bridge", "minority"}


def test_bad_interval_and_names_are_refused() -> None:
    for interval in (0, 0.0001, float("inf")):
        with pytest.raises(ValueError, match=r"interval must be at least 0\.01 seconds"):
            plans(interval=interval)
    with pytest.raises(ValueError, match="unknown fault 'x'"):
        plans(faults=("x",))


def test_the_shortest_interval_plans_an_ending_schedule() -> None:
    # Below 2 ms a rest of half an interval rounded to nothing: planning never ended.
    ps = plans(faults=("partition", "kill", "pause"), interval=MIN_INTERVAL, count=300)
    assert len(ps) == 300 and ps[-1].start > 0


# Density and swarm: properties over many seeds, pure and fast.

EPOCH = EPOCH_STEPS * 3.0  # seconds, at the default 3 s interval


def test_each_epoch_runs_a_mix_of_two_or_three_kinds_and_each_starts_in_its_epoch() -> None:
    for seed in range(100):
        ps = until(8 * EPOCH, seed)
        for epoch in range(8):
            started = {p.fault for p in ps if epoch * EPOCH <= p.start < (epoch + 1) * EPOCH}
            assert 2 <= len(started) <= 3, (seed, epoch, started)
            assert not {"partition", "churn"} <= started  # one timeline: never in one mix


def test_a_run_of_enough_epochs_reaches_every_kind_of_all() -> None:
    # Each kind comes up once before any twice, and an epoch deals at least two.
    epochs = -(-len(FAULTS) // 2)
    for seed in range(100):
        assert {p.fault for p in until(epochs * EPOCH, seed)} == set(FAULTS), seed


def test_faults_of_different_kinds_overlap() -> None:
    for seed in range(100):
        ps = until(60.0, seed)
        overlapping = {frozenset((a.fault, b.fault)) for a, b in itertools.combinations(ps, 2)
                       if a.fault != b.fault and a.start < b.stop and b.start < a.stop}
        assert overlapping, seed
    # Over the seeds, the pairs the brief names come up: a partition during a kill, and a pause
    # during a partition.
    every = {frozenset((a.fault, b.fault)) for seed in range(100)
             for a, b in itertools.combinations(until(60.0, seed), 2)
             if a.start < b.stop and b.start < a.stop}
    assert {frozenset(("partition", "kill")), frozenset(("partition", "pause"))} <= every


def test_each_seed_draws_its_own_mixes_and_rates() -> None:
    first_mixes = {frozenset(p.fault for p in until(EPOCH, seed)) for seed in range(100)}
    assert len(first_mixes) >= 12
    holds = {tuple(sorted({round(p.stop - p.start, 6) for p in until(60.0, seed)
                           if p.fault == "kill"})) for seed in range(100)}
    assert len(holds) >= 3  # some seeds hold kills for one interval, some for two, some both


def test_a_few_kinds_all_run_in_every_epoch() -> None:
    for seed in range(20):
        ps = until(4 * EPOCH, seed, faults=("partition", "kill", "crash"))
        for epoch in range(4):
            started = {p.fault for p in ps if epoch * EPOCH <= p.start < (epoch + 1) * EPOCH}
            assert started == {"partition", "kill", "crash"}, (seed, epoch)

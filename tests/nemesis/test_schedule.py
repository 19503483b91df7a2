"""The schedule is pure and seeded: same seed, same plans; every kind and variant reachable."""

from __future__ import annotations

import itertools
import random

import pytest

from splitbrain.nemesis.schedule import (
    CRASH_POINTS,
    FAULTS,
    HOLD_STEPS,
    LEAD_TIMES,
    NET_FAULTS,
    PARTITIONS,
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


def test_parse_faults() -> None:
    assert parse_faults("partition, kill,partition") == ("partition", "kill")
    assert parse_faults("all") == FAULTS
    assert parse_faults("none") == () == parse_faults("")
    with pytest.raises(ValueError, match="unknown fault 'flood'"):
        parse_faults("kill,flood")


def test_a_fault_can_be_narrowed_to_some_of_its_variants() -> None:
    assert parse_faults("kill:leader, crash:all+after-vote,kill:one") == (
        "kill:leader+one", "crash:after-vote+all")
    assert parse_faults("kill:leader,kill") == ("kill",)
    with pytest.raises(ValueError, match="kill has no variant 'bridge' \\(known: one, "):
        parse_faults("kill:bridge")
    with pytest.raises(ValueError, match="churn has no variant 'x' \\(known: none\\)"):
        parse_faults("churn:x")
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


def test_plans_come_in_start_order_on_interval_steps() -> None:
    ps = plans(interval=1.5)
    assert [p.start for p in ps] == sorted(p.start for p in ps)
    assert all((p.start / 1.5).is_integer() for p in ps)


def test_at_most_one_fault_of_each_kind_in_force_and_a_rest_between() -> None:
    ps = plans()
    for fault in FAULTS:
        mine = [p for p in ps if p.fault == fault]
        for a, b in itertools.pairwise(mine):
            assert b.start > a.stop
    for p in ps:
        expected = 0 if p.fault == "restart" else HOLD_STEPS * 2.0
        assert p.stop - p.start == expected


def test_partition_and_churn_are_never_in_force_together() -> None:
    ps = [p for p in plans(count=2000) if p.fault in ("partition", "churn")]
    assert {p.fault for p in ps} == {"partition", "churn"}
    for a, b in itertools.pairwise(ps):
        assert b.start > a.stop


def test_every_variant_is_reachable_with_the_right_targets() -> None:
    ps = plans(count=2000)
    seen = {(p.fault, p.kind) for p in ps}
    assert {("partition", k) for k in PARTITIONS} <= seen
    assert {("net", k) for k in NET_FAULTS} <= seen
    for f in ("kill", "pause", "restart", "crash"):
        assert {(f, k) for k in TARGETS} <= seen
    assert {p.point for p in ps if p.fault == "crash"} == set(CRASH_POINTS)
    assert {p.lead for p in ps if p.fault == "churn"} == set(LEAD_TIMES)
    sizes = {"one": 1, "leader": 1, "minority": 2, "majority": 3, "all": 5}
    for p in ps:
        if p.fault in ("kill", "pause", "restart", "crash"):
            assert len(p.nodes) == sizes[p.kind] and set(p.nodes) <= set(NODES)
        if p.fault == "partition":
            assert p.grudge is not None and set(p.grudge) == set(NODES)
        if p.kind == "isolate-leader":
            (fallback,) = p.nodes
            assert p.grudge is not None and p.grudge[fallback] == set(NODES) - {fallback}
        if p.fault == "net":
            assert len(p.links) == 20 and p.link_faults is not None and p.link_faults.active()


def test_only_the_selected_faults_are_planned() -> None:
    assert {p.fault for p in plans(faults=("pause",))} == {"pause"}
    assert plans(faults=()) == []


def test_small_clusters_get_no_meaningless_partitions() -> None:
    ps = plans(faults=("partition", "kill"), nodes=["n1", "n2"], count=300)
    kinds = {p.kind for p in ps}
    assert not kinds & {"majorities-ring", "bridge", "minority"}


def test_bad_interval_and_names_are_refused() -> None:
    with pytest.raises(ValueError, match="interval must be positive"):
        plans(interval=0)
    with pytest.raises(ValueError, match="unknown fault 'x'"):
        plans(faults=("x",))

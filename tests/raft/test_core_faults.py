"""Randomized crashes, partitions and an unreliable network (MIT 6.824 lab 2C ground).

Each test is seeded, so a failure replays exactly. SimNet checks the invariants on every step —
at most one leader per term, identical entries applied at each index, in-order application,
nothing applied without a durable majority — which is what these tests are really about: they
must hold whatever the schedule of faults.
"""

from __future__ import annotations

import random

import pytest

from splitbrain.raft.rawnode import NotLeader
from splitbrain.testing.simnet import SimNet

ELECTION = 10


def propose_to_leaders(net: SimNet, data: bytes) -> str | None:
    """Offer `data` to every live node that thinks it leads (as 6.824's tests call Start on
    every server); returns the last one that accepted."""
    accepted = None
    for n in net.alive():
        if net.status(n).role == "leader":
            try:
                net.propose(n, data)
                accepted = n
            except NotLeader:
                pass
    return accepted


def pause(net: SimNet, rng: random.Random) -> None:
    """Mostly a short pause (under a broadcast interval), sometimes up to two election timeouts."""
    net.tick(rng.randint(0, 2 * ELECTION) if rng.random() < 0.1 else rng.randint(0, 1))


def assert_all_agree(net: SimNet) -> list[bytes]:
    net.tick(2)
    net.check_logs()
    logs = {n: net.commands(n) for n in net.ids}
    first = logs[net.ids[0]]
    assert all(log == first for log in logs.values()), logs
    return first


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_figure8_with_crashes(seed: int) -> None:
    """Reference: §5.4.2, Figure 8. Leaders crash right after taking a command, again and
    again, with at most two of five nodes down; nothing committed is ever lost or changed."""
    net = SimNet(5, seed=seed)
    rng = random.Random(seed)
    net.one(b"start", 1)
    for i in range(1000):
        leader = propose_to_leaders(net, f"f{i}".encode())
        pause(net, rng)
        if leader is not None:
            net.crash(leader)
        down = [n for n in net.ids if not net.nodes[n].alive]
        if len(down) > 2:
            net.restart(rng.choice(down))
    for n in net.ids:
        if not net.nodes[n].alive:
            net.restart(n)
    net.one(b"end", 5, ticks=1000)
    assert_all_agree(net)


@pytest.mark.parametrize("seed", [1, 2])
def test_unreliable_agreement(seed: int) -> None:
    """Reference: §5.3. With 10% of messages lost and the rest delayed and reordered, every
    command still commits once, in one order on every node."""
    net = SimNet(5, seed=seed)
    net.drop(0.1)
    net.delay(2)
    net.duplicate(0.05)
    for i in range(30):
        for j in range(4):
            propose_to_leaders(net, f"u{i}-{j}".encode())
        net.one(f"u{i}".encode(), 1, ticks=1000)
    net.recover()
    net.one(b"end", 5, ticks=1000)
    log = assert_all_agree(net)
    assert len(log) == len(set(log))  # each proposal appended at most once per leader offer
    assert all(f"u{i}".encode() in log for i in range(30))


@pytest.mark.parametrize("seed", [1, 2])
def test_figure8_unreliable_with_long_reordering(seed: int) -> None:
    """Reference: §5.4.2, Figure 8, §5.3. Leaders are cut off right after taking commands on
    a network that drops, duplicates and holds a fifth of messages back for up to ten election
    timeouts; stale messages arriving long after must not undo anything committed."""
    net = SimNet(5, seed=seed)
    rng = random.Random(seed)
    net.drop(0.1)
    net.delay(1)
    net.duplicate(0.05)
    net.one(b"start", 1, ticks=1000)
    isolated: set[str] = set()
    for i in range(1000):
        if i == 50:
            net.reorder(0.2, 10 * ELECTION)
        leader = propose_to_leaders(net, f"f{i}".encode())
        pause(net, rng)
        if leader is not None and rng.random() < 0.5:
            net.isolate(leader)
            isolated.add(leader)
        if len(isolated) > 2:
            back = rng.choice(sorted(isolated))
            net.rejoin(back)
            isolated.discard(back)
    net.recover()
    net.one(b"end", 5, ticks=2000)
    assert_all_agree(net)


def churn(net: SimNet, rng: random.Random, rounds: int) -> set[bytes]:
    """Clients keep proposing while nodes are cut off, crashed and restarted at random.
    Returns the commands that some node applied during the churn."""
    seen: set[bytes] = set()
    for i in range(rounds):
        for client in range(3):
            propose_to_leaders(net, f"c{client}-{i}".encode())
        victim = rng.choice(net.ids)
        roll = rng.random()
        if roll < 0.2:
            net.isolate(victim)
        elif roll < 0.5:
            net.rejoin(victim)
        elif roll < 0.7 and net.nodes[victim].alive:
            net.crash(victim)
        elif not net.nodes[victim].alive:
            net.restart(victim)
        net.tick(rng.randint(1, ELECTION))
        seen |= {e.data for e in net.committed.values()}
    return seen


@pytest.mark.parametrize("unreliable", [False, True], ids=["reliable", "unreliable"])
def test_churn(unreliable: bool) -> None:
    """Reference: §5 as a whole. Random partitions, crashes and restarts under a stream of
    proposals; afterwards every node holds the same log, every command at most once, and every
    command that was ever applied is in it."""
    net = SimNet(5, seed=31 if unreliable else 30)
    rng = random.Random(5)
    if unreliable:
        net.drop(0.1)
        net.delay(2)
        net.duplicate(0.05)
    applied_during = churn(net, rng, 300)
    net.recover()
    for n in net.ids:
        if not net.nodes[n].alive:
            net.restart(n)
    net.one(b"end", 5, ticks=1000)
    log = assert_all_agree(net)
    commands = [c for c in log if c != b"end"]
    assert len(commands) == len(set(commands))
    assert applied_during - {b""} <= set(log)
    assert len(commands) > 100  # the cluster made progress through the churn


def test_the_same_seed_replays_the_same_run() -> None:
    """SimNet draws every timeout, drop and delay from its seed: a failing seed replays."""

    def run() -> tuple[int, list[tuple[int, int, bytes]], list[tuple[str, int]]]:
        net = SimNet(5, seed=77)
        net.drop(0.1)
        net.delay(2)
        churn(net, random.Random(77), 60)
        log = [(i, e.term, e.data) for i, e in sorted(net.committed.items())]
        return net.time, log, sorted((t.name, n) for t, n in net.sent.items())

    first = run()
    assert len(first[1]) > 10
    assert run() == first

"""Persistence across crashes on a simulated network (MIT 6.824 lab 2C ground).

A crash keeps exactly what the node persisted through Ready (hard state and entries) and loses
the rest; a restarted node re-applies its committed entries from index 1. SimNet checks the
invariants on every step — at most one leader per term, identical entries applied at each
index, in-order application, nothing applied without a durable majority.
"""

from __future__ import annotations

import pytest

from splitbrain.raft.messages import HardState, MessageType
from splitbrain.testing.simnet import InvariantViolation, SimNet

ELECTION = 10


def crash_all_and_restart(net: SimNet) -> None:
    for n in net.ids:
        net.crash(n)
    for n in net.ids:
        net.restart(n)


def test_persist_whole_cluster_and_single_nodes() -> None:
    """Reference: Figure 2 (persistent state), §5.2. Everything committed survives restarts of
    the whole cluster, of a leader, of a follower (6.824 Persist1)."""
    net = SimNet(3, seed=21)
    net.one(b"11", 3)
    crash_all_and_restart(net)
    net.one(b"12", 3)

    leader1 = net.wait_leader()
    net.crash(leader1)
    net.restart(leader1)
    net.one(b"13", 3)

    leader2 = net.wait_leader()
    net.crash(leader2)
    net.one(b"14", 2)
    net.restart(leader2)
    net.one(b"14b", 3)

    leader3 = net.wait_leader()
    follower = net.ids[(net.ids.index(leader3) + 1) % 3]
    net.crash(follower)
    net.one(b"15", 2)
    net.restart(follower)
    net.one(b"16", 3)
    net.tick(2)
    expected = [b"11", b"12", b"13", b"14", b"14b", b"15", b"16"]
    for n in net.ids:
        assert net.commands(n) == expected  # a restarted node re-applies from index 1


def test_persist_repeated_follower_crashes() -> None:
    """Reference: Figure 2, §5.3. Five nodes; followers crash and restart in waves while
    commands commit, so restarted nodes must catch up from their durable logs (6.824
    Persist2)."""
    net = SimNet(5, seed=22)
    index = 1
    for _ in range(5):
        net.one(f"{10 + index}".encode(), 5)
        index += 1
        leader1 = net.wait_leader()
        i = net.ids.index(leader1)
        down = [net.ids[(i + 1) % 5], net.ids[(i + 2) % 5]]
        for n in down:
            net.crash(n)
        net.one(f"{10 + index}".encode(), 3)
        index += 1
        others = [net.ids[(i + k) % 5] for k in (0, 3, 4)]
        for n in others:
            net.crash(n)
        for n in down:
            net.restart(n)
        net.tick(ELECTION)
        for n in others[1:]:
            net.restart(n)
        net.one(f"{10 + index}".encode(), 4)
        index += 1
        net.restart(others[0])
    net.one(b"1000", 5)


def test_persist_partitioned_leader_crashes() -> None:
    """Reference: Figure 2, §5.4.1. A leader and a follower cut off, then a crash of the
    follower and the new leader: the restarted nodes agree on all that was committed (6.824
    Persist3)."""
    net = SimNet(3, seed=23)
    net.one(b"101", 3)
    leader = net.wait_leader()
    i = net.ids.index(leader)
    follower = net.ids[(i + 2) % 3]
    net.isolate(follower)
    net.one(b"102", 2)
    net.crash(leader)
    net.crash(net.ids[(i + 1) % 3])
    net.rejoin(follower)
    net.restart(leader)
    net.one(b"103", 2)
    net.restart(net.ids[(i + 1) % 3])
    net.one(b"104", 3)
    net.tick(2)
    for n in net.ids:
        assert net.commands(n) == [b"101", b"102", b"103", b"104"]


def two_candidates_one_term(*, forget_vote: bool) -> SimNet:
    """n1 wins term 1 with n2's vote; n2 restarts (forgetting its vote if asked); then n3,
    which never heard of term 1, campaigns in term 1 too and asks n2."""
    net = SimNet(3, seed=24, pre_vote=False, check_quorum=False, election_tick=1000)
    net.cut("n1", "n3")
    net.filter(lambda m: m.type == MessageType.APP)  # n2's log stays as empty as n3's
    net.campaign("n1")
    assert net.status("n1").role == "leader"
    assert net.nodes["n2"].hard_state.vote == "n1"
    net.crash("n2")
    if forget_vote:  # what the runtime's --unsafe no-vote-persist does on restart
        hard_state = net.nodes["n2"].hard_state
        net.nodes["n2"].hard_state = HardState(hard_state.term, None, hard_state.commit)
    net.restart("n2")
    net.campaign("n3")
    return net


def test_a_durable_vote_survives_a_restart() -> None:
    """Reference: Figure 2 (votedFor is persistent), §5.2. A node that voted, crashed and
    restarted does not vote for a second candidate in the same term."""
    net = two_candidates_one_term(forget_vote=False)
    assert net.status("n3").term == 1
    assert net.status("n3").role == "candidate"
    assert net.status("n2").term == 1
    assert net.nodes["n2"].hard_state.vote == "n1"


def test_a_forgotten_vote_elects_two_leaders_in_one_term() -> None:
    """Reference: Figure 2, §5.2. The runtime's `--unsafe no-vote-persist`: a restarted node
    votes again in the same term, and the invariant check catches two leaders in term 1."""
    with pytest.raises(InvariantViolation, match="two leaders in term 1"):
        two_candidates_one_term(forget_vote=True)

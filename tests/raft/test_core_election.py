"""Leader election on a simulated network (MIT 6.824 lab 2A ground).

SimNet checks the invariants on every step — at most one leader per term, identical entries
applied at each index, in-order application, nothing applied without a durable majority — so
every test here also checks them.
"""

from __future__ import annotations

import pytest

from splitbrain.raft.messages import MessageType
from splitbrain.testing.simnet import SimNet

ELECTION = 10  # election_tick; timeouts are drawn from [10, 20) ticks


def test_initial_election() -> None:
    """Reference: §5.2. Three nodes elect one leader, and without failures the term stays."""
    net = SimNet(3, seed=1)
    leader = net.wait_leader(ticks=3 * ELECTION)
    term = net.status(leader).term
    assert term >= 1
    net.tick(5 * ELECTION)
    assert net.leader() == leader
    assert {net.status(n).term for n in net.ids} == {term}
    assert all(net.status(n).leader == leader for n in net.ids)


@pytest.mark.parametrize("seed", range(5))
def test_re_election(seed: int) -> None:
    """Reference: §5.2. A new leader after the old one is cut off; none without a quorum."""
    net = SimNet(3, seed=seed)
    leader1 = net.wait_leader()
    net.isolate(leader1)
    rest = [n for n in net.ids if n != leader1]
    leader2 = net.wait_leader(among=rest)
    assert net.status(leader2).term > net.status(leader1).term

    # The old leader rejoins: it must not disturb the new one (it steps down to follow).
    net.rejoin(leader1)
    net.tick(3 * ELECTION)
    assert net.leader() == net.wait_leader()
    assert net.status(leader1).role == "follower"

    # No quorum: no leader among the connected.
    leader2 = net.wait_leader()
    other = next(n for n in net.ids if n != leader2)
    net.isolate(leader2)
    net.isolate(other)
    net.tick(4 * ELECTION)
    alone = next(n for n in net.ids if n not in (leader2, other))
    assert net.status(alone).role != "leader"
    # CheckQuorum: the cut-off leader steps down too (thesis §6.2).
    assert net.status(leader2).role != "leader"

    net.rejoin(other)
    net.wait_leader(among=[alone, other])
    net.rejoin(leader2)
    net.wait_leader()


def test_many_elections_seven_nodes() -> None:
    """Reference: §5.2. Seven nodes; again and again three are cut off; the four elect a leader."""
    net = SimNet(7, seed=7)
    net.wait_leader()
    for _ in range(10):
        cut = net.rng.sample(net.ids, 3)
        for n in cut:
            net.isolate(n)
        rest = [n for n in net.ids if n not in cut]
        net.tick(3 * ELECTION)  # a leader among the cut ones steps down by CheckQuorum
        leader = net.wait_leader(among=rest)
        assert net.status(leader).term == max(net.status(n).term for n in rest)
        for n in cut:
            net.rejoin(n)
    net.wait_leader()


def test_pre_vote_keeps_a_rejoining_node_from_disrupting() -> None:
    """Reference: thesis §9.6 (PreVote). A node cut off for long does not raise its term, so
    on rejoining it neither deposes the leader nor forces an election."""
    net = SimNet(3, seed=3)
    leader = net.wait_leader()
    term = net.status(leader).term
    follower = next(n for n in net.ids if n != leader)
    net.isolate(follower)
    net.tick(20 * ELECTION)
    assert net.status(follower).term == term
    net.rejoin(follower)
    net.tick(5 * ELECTION)
    assert net.leader() == leader
    assert net.status(leader).term == term


def test_election_message_count() -> None:
    """Reference: §5.2 (6.824 TestCount2B, election part). An election in a quiet three-node
    cluster takes a handful of messages, not a storm."""
    net = SimNet(3, seed=11)
    net.wait_leader()
    votes = sum(
        net.sent[t]
        for t in (
            MessageType.PRE_VOTE,
            MessageType.PRE_VOTE_RESP,
            MessageType.VOTE,
            MessageType.VOTE_RESP,
        )
    )
    assert 4 <= votes <= 16


def test_a_partially_cut_node_cannot_depose_a_live_leader() -> None:
    """Reference: §6 (disruptive servers), thesis §6.2 and §9.6. n3 loses the link to the
    leader but still reaches n2; n2 hears from the leader, so it ignores n3's (pre-)votes and
    the leader keeps its term."""
    net = SimNet(3, seed=13)
    leader = net.wait_leader()
    term = net.status(leader).term
    follower, cut_off = (n for n in net.ids if n != leader)
    net.cut(leader, cut_off)
    net.tick(10 * ELECTION)
    assert net.leader() == leader
    assert net.status(leader).term == term
    assert net.status(follower).term == term


@pytest.mark.parametrize("pre_vote", [False, True])
def test_a_candidate_asks_again_the_peers_that_did_not_answer(pre_vote: bool) -> None:
    """Reference: §5.1 (servers retry RPCs that get no timely response). n1's first requests
    are lost; it asks again at the next heartbeat tick and wins within a few ticks instead of
    waiting for another election timeout."""
    net = SimNet(3, seed=5, election_tick=1000, pre_vote=pre_vote, check_quorum=False)
    net.isolate("n1")
    net.campaign("n1")
    assert net.status("n1").role != "leader"
    net.rejoin("n1")
    net.tick(3)
    assert net.leader() == "n1"

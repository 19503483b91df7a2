"""Lease reads (thesis §6.4.1; etcd's LeaseBased) on a simulated network.

SimNet raises InvariantViolation for a read served at an index below what was applied anywhere
when it was asked (a stale read), so a test that drives a lease into the wrong time fails
there. ELECTION ticks are the election timeout; a lease lasts LEASE ticks.
"""

from __future__ import annotations

import pytest

from splitbrain.raft.messages import MessageType
from splitbrain.raft.rawnode import Config, NotLeader
from splitbrain.testing.simnet import InvariantViolation, SimNet

ELECTION = 10
LEASE = 8  # (ELECTION - 1) ticks, less the default 10% for a leader's clock running slow


def lease_net(size: int = 3, seed: int = 51) -> tuple[SimNet, str]:
    net = SimNet(size, seed=seed, election_tick=ELECTION, read_mode="lease")
    net.one(b"w1", size)
    net.tick(2)  # a heartbeat round of the leader's term: its lease starts
    return net, net.wait_leader()


def test_a_leader_in_its_lease_serves_a_read_at_once_without_a_heartbeat_round() -> None:
    net, leader = lease_net()
    before = net.sent[MessageType.HEARTBEAT]
    net.read(leader, b"r")
    assert net.reads[b"r"] == net.status(leader).commit  # served within the call: no round
    assert net.sent[MessageType.HEARTBEAT] == before


def test_a_partitioned_leader_serves_from_its_lease_only_until_it_ends() -> None:
    """With clocks at one rate the lease ends before any follower can vote for a successor,
    so nothing it serves is stale; after that its reads wait for a round that never comes."""
    net, old = lease_net(5)
    others = [n for n in net.ids if n != old]
    net.partition([old], others)
    served = 0
    for i in range(3 * ELECTION):
        ctx = f"r{i}".encode()
        if net.status(old).role != "leader":
            with pytest.raises(NotLeader):
                net.read(old, ctx)
            continue
        net.read(old, ctx)
        served += ctx in net.reads
        net.tick(1)
    assert 0 < served <= LEASE  # in the lease: at once; then never, though it still led a while
    net.wait_leader(among=others)
    net.one(b"w2", 4, among=others)
    net.recover()
    net.tick(3 * ELECTION)
    net.read(net.wait_leader(), b"fresh")
    assert net.reads[b"fresh"] >= net.committed_index_of(b"w2")


def test_a_leader_whose_clock_stands_still_serves_stale_reads() -> None:
    """Leases rest on clocks running at one rate: a leader whose clock stopped (a process
    stalled, a clock slowed or jumped back) still believes in its lease after the others have
    elected a successor and committed a write, and a read it serves misses that write."""
    net, old = lease_net(3, seed=52)
    others = [n for n in net.ids if n != old]
    net.partition([old], others)
    net.tick(4 * ELECTION, frozen=[old])
    net.wait_leader(among=others)
    net.one(b"w2", 2, among=others)
    with pytest.raises(InvariantViolation, match="stale read on"):
        net.read(old, b"stale")


def test_a_new_leader_serves_lease_reads_only_after_its_first_commit() -> None:
    net, leader = lease_net(3, seed=53)
    net.crash(leader)
    net.filter(lambda m: m.type == MessageType.APP_RESP)  # hold back acks of the next no-op
    successor = net.wait_leader(among=[n for n in net.ids if n != leader])
    net.tick(2)  # heartbeats are acknowledged: a lease, but nothing of its term committed
    assert net.nodes[successor].raw._raft.in_lease()  # type: ignore[union-attr]
    net.read(successor, b"r")
    assert b"r" not in net.reads
    net.recover()
    net.tick(2)
    assert net.reads[b"r"] >= net.status(successor).commit - 1


def test_a_lease_is_measured_from_the_heartbeat_sent_not_the_answer() -> None:
    """Answers that arrive late renew the lease only from when their heartbeat left."""
    net, leader = lease_net(3, seed=54)
    raft = net.nodes[leader].raw._raft  # type: ignore[union-attr]
    net.delay(3)  # every message takes up to 3 ticks
    net.tick(ELECTION)
    start = raft.lease_start
    assert start is not None and raft.ticks - start >= 1  # a beat sent earlier than now
    assert all(beat.sent >= start for beat in raft.beats.values())


def test_a_node_that_just_started_grants_no_vote_for_an_election_timeout() -> None:
    """It may have acknowledged the leader's last heartbeat in the life it lost, so a vote
    from it could elect a successor inside that leader's lease."""
    net, leader = lease_net(3, seed=55)
    follower = next(n for n in net.ids if n != leader)
    third = next(n for n in net.ids if n not in (leader, follower))
    net.crash(follower)
    net.restart(follower)
    net.isolate(leader)
    net.campaign(third)
    assert net.status(third).role != "leader"  # its one possible voter keeps quiet
    net.tick(3 * ELECTION)
    assert net.leader(among=[follower, third]) is not None  # and votes once it has waited


def test_lease_options_are_checked() -> None:
    with pytest.raises(ValueError, match="read_mode"):
        Config("n1", ("n1",), read_mode="fast")
    with pytest.raises(ValueError, match="drift_percent"):
        Config("n1", ("n1",), election_tick=10, drift_percent=100)



@pytest.mark.parametrize("election", [2, 5, 10, 15, 30, 100])
@pytest.mark.parametrize("drift", [0, 10, 25])
def test_a_lease_ends_before_a_follower_timeout_at_any_election_timeout(election, drift) -> None:
    """A follower may time out election - 1 of its ticks after it acknowledged; a leader whose
    clock runs drift% slow must have ended its lease by then, and gives up no more than a tick
    of it. (A lease of election - 3 ticks, as it was, outlived that at 30 ticks and 10%.)"""
    config = Config("n1", ("n1",), election_tick=election, read_mode="lease", drift_percent=drift)
    follower_ticks = election - 1
    assert config.lease_ticks * 100 <= follower_ticks * (100 - drift)  # in follower ticks
    assert (config.lease_ticks + 1) * 100 > follower_ticks * (100 - drift)


def test_the_lease_at_the_nodes_default_timeout_is_what_it_was_and_at_the_tests_is_lease() -> None:
    assert Config("n1", ("n1",), election_tick=15).lease_ticks == 12  # the node's default
    assert Config("n1", ("n1",), election_tick=ELECTION).lease_ticks == LEASE

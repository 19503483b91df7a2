"""Linearizable reads by ReadIndex (Raft §8; thesis §6.4) on a simulated network.

SimNet records, for every read, the highest index applied anywhere when the read was asked,
and raises InvariantViolation if the read is served at a lower index (a stale read); it also
checks the other invariants on every step.
"""

from __future__ import annotations

import pytest

from splitbrain.raft.messages import MessageType
from splitbrain.raft.rawnode import NotLeader
from splitbrain.testing.simnet import SimNet

ELECTION = 10


@pytest.mark.parametrize("check_quorum", [True, False])
def test_a_partitioned_old_leader_never_serves_a_stale_read(check_quorum: bool) -> None:
    """Reference: §8; thesis §6.4. A leader cut off from the majority cannot complete a heartbeat
    round, so it never answers a read — not while it still believes it leads, not after the
    majority has elected a new leader and committed writes, and not after it rejoins."""
    net = SimNet(5, seed=41, check_quorum=check_quorum)
    net.one(b"w1", 5)
    old = net.wait_leader()
    minority = [old, next(n for n in net.ids if n != old)]
    majority = [n for n in net.ids if n not in minority]
    net.partition(minority, majority)

    net.read(old, b"early")  # asked while it still leads, before anything changed
    new = net.wait_leader(among=majority)
    net.one(b"w2", 3, among=majority)
    if net.status(old).role == "leader":  # without CheckQuorum it still believes it leads
        net.read(old, b"late")
    else:
        with pytest.raises(NotLeader) as refused:
            net.read(old, b"late")
        assert refused.value.leader_hint is None
    net.tick(3 * ELECTION)
    assert b"early" not in net.reads
    assert b"late" not in net.reads

    net.recover()
    net.tick(3 * ELECTION)
    assert net.leader() == new
    assert net.reads.keys() == set()  # the deposed leader dropped its pending reads
    net.read(new, b"fresh")
    assert net.reads[b"fresh"] >= net.committed_index_of(b"w2")


def test_a_new_leader_reads_only_after_committing_in_its_term() -> None:
    """Reference: §8; thesis §6.4 step 1. A new leader does not know what is committed until its
    no-op commits; a read asked before then waits for it."""
    net = SimNet(3, seed=42)
    net.one(b"w1", 3)
    leader = net.wait_leader()
    net.crash(leader)
    # Hold back the acknowledgements of the next leader's no-op.
    net.filter(lambda m: m.type == MessageType.APP_RESP)
    successor = net.wait_leader(among=[n for n in net.ids if n != leader])
    noop_index = net.status(successor).last_index
    net.read(successor, b"r")
    net.tick(2)
    assert b"r" not in net.reads
    net.recover()
    net.tick(2)
    assert net.reads[b"r"] >= noop_index


def test_reads_asked_together_share_one_heartbeat_round() -> None:
    """Reference: thesis §6.4 (batching). Reads asked between two Readies cost one heartbeat per
    follower, and all are served."""
    net = SimNet(3, seed=43)
    net.one(b"w1", 3)
    leader = net.wait_leader()
    raw = net.nodes[leader].raw
    assert raw is not None
    before = net.sent[MessageType.HEARTBEAT]
    for i in range(20):
        raw.read_index(f"r{i}".encode())
    net.settle()
    assert net.sent[MessageType.HEARTBEAT] - before == 2
    assert sorted(net.reads) == sorted(f"r{i}".encode() for i in range(20))


def test_reads_survive_lost_heartbeats() -> None:
    """Reference: §8; thesis §6.4. A read whose heartbeat round was lost is confirmed by a
    later one."""
    net = SimNet(3, seed=44)
    net.one(b"w1", 3)
    leader = net.wait_leader()
    net.filter(lambda m: m.type == MessageType.HEARTBEAT_RESP)
    net.read(leader, b"r")
    assert b"r" not in net.reads
    net.recover()
    net.tick(1)
    assert b"r" in net.reads


def test_a_follower_refuses_reads_with_a_hint() -> None:
    """Reference: §8 — only the leader serves ReadIndex; the runtime does not forward."""
    net = SimNet(3, seed=45)
    leader = net.wait_leader()
    follower = next(n for n in net.ids if n != leader)
    with pytest.raises(NotLeader) as refused:
        net.read(follower, b"r")
    assert refused.value.leader_hint == leader


def test_single_node_reads_at_once() -> None:
    """Reference: thesis §6.4. A cluster of one is its own quorum."""
    net = SimNet(1, seed=46)
    net.one(b"w1", 1)
    net.read("n1", b"r")
    assert net.reads[b"r"] == net.status("n1").commit

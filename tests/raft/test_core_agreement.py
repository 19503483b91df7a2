"""Log replication and commitment on a simulated network (MIT 6.824 lab 2B ground).

SimNet checks the invariants on every step — at most one leader per term, identical entries
applied at each index, in-order application, nothing applied without a durable majority.
"""

from __future__ import annotations

import contextlib

from splitbrain.raft.messages import Message, MessageType
from splitbrain.raft.rawnode import NotLeader
from splitbrain.testing.simnet import SimNet

ELECTION = 10


def test_basic_agreement() -> None:
    """Reference: §5.3. Each command is committed at the next index on every node."""
    net = SimNet(3, seed=1)
    net.wait_leader()
    indexes = [net.one(f"c{i}".encode(), 3, retry=False) for i in range(1, 4)]
    assert indexes == [indexes[0], indexes[0] + 1, indexes[0] + 2]
    net.tick(2)
    assert all(net.commands(n) == [b"c1", b"c2", b"c3"] for n in net.ids)


def test_follower_failure() -> None:
    """Reference: §5.3. Commits go on without one follower; with two gone, nothing commits."""
    net = SimNet(3, seed=2)
    leader = net.wait_leader()
    net.one(b"a", 3)
    follower1 = next(n for n in net.ids if n != leader)
    net.isolate(follower1)
    net.one(b"b", 2)
    net.tick(2 * ELECTION)
    net.one(b"c", 2)

    leader = net.wait_leader(among=[n for n in net.ids if n != follower1])
    follower2 = next(n for n in net.ids if n not in (leader, follower1))
    net.isolate(follower2)
    index, _ = net.propose(leader, b"d")
    net.tick(4 * ELECTION)
    assert net.applied_count(index) == (0, None)


def test_leader_failure() -> None:
    """Reference: §5.2, §5.3. A new leader carries on; with no quorum left, nothing commits."""
    net = SimNet(3, seed=3)
    leader1 = net.wait_leader()
    net.one(b"a", 3)
    net.isolate(leader1)
    net.one(b"b", 2)
    leader2 = net.wait_leader(among=[n for n in net.ids if n != leader1])
    net.isolate(leader2)
    index = max(len(node.entries) for node in net.nodes.values()) + 1
    for n in net.ids:
        with contextlib.suppress(NotLeader):
            net.propose(n, b"c")
    net.tick(4 * ELECTION)
    assert net.applied_count(index) == (0, None)


def test_agreement_after_follower_rejoins() -> None:
    """Reference: §5.3. A follower that missed entries catches up when it rejoins."""
    net = SimNet(3, seed=4)
    leader = net.wait_leader()
    net.one(b"101", 3)
    follower = next(n for n in net.ids if n != leader)
    net.isolate(follower)
    for data in (b"102", b"103"):
        net.one(data, 2)
    net.tick(2 * ELECTION)
    net.one(b"104", 2)
    net.rejoin(follower)
    net.one(b"106", 3)
    net.tick(2)
    assert net.commands(follower) == [b"101", b"102", b"103", b"104", b"106"]


def test_no_commit_without_majority() -> None:
    """Reference: §5.3. Five nodes, three cut off: the leader's entry is not committed; after
    they return, a new entry commits and the uncommitted one may or may not survive."""
    net = SimNet(5, seed=5)
    net.one(b"10", 5)
    leader = net.wait_leader()
    followers = [n for n in net.ids if n != leader][:3]
    for n in followers:
        net.isolate(n)
    index, _ = net.propose(leader, b"20")
    net.tick(2 * ELECTION)
    assert net.applied_count(index) == (0, None)

    for n in followers:
        net.rejoin(n)
    net.wait_leader()
    net.one(b"30", 5)
    net.one(b"1000", 5)


def test_concurrent_proposals() -> None:
    """Reference: §5.3. Many proposals in one term are committed, each exactly once."""
    net = SimNet(3, seed=6)
    leader = net.wait_leader()
    term = net.status(leader).term
    raw = net.nodes[leader].raw
    assert raw is not None
    # All offered before one ready(): they must leave in one batch per follower.
    proposed = [raw.propose(f"x{i}".encode()) for i in range(50)]
    assert {t for _, t in proposed} == {term}
    assert [i for i, _ in proposed] == list(range(proposed[0][0], proposed[0][0] + 50))
    appends_before = net.sent[MessageType.APP]
    net.settle()
    assert net.sent[MessageType.APP] - appends_before <= 4  # entries + commit, per follower
    net.tick(2)
    expected = [f"x{i}".encode() for i in range(50)]
    assert all(net.commands(n) == expected for n in net.ids)


def test_rejoin_of_partitioned_leader() -> None:
    """Reference: §5.3, §5.4.1. A cut-off leader's uncommitted entries are replaced when it
    rejoins; it cannot win an election with its stale log."""
    net = SimNet(3, seed=7)
    net.one(b"101", 3)
    leader1 = net.wait_leader()
    net.isolate(leader1)
    for data in (b"102", b"103", b"104"):
        net.propose(leader1, data)
    net.one(b"103b", 2)
    leader2 = net.wait_leader(among=[n for n in net.ids if n != leader1])
    net.isolate(leader2)
    net.rejoin(leader1)
    net.one(b"104b", 2)
    net.rejoin(leader2)
    net.one(b"105", 3)
    net.tick(2)
    for n in net.ids:
        assert net.commands(n) == [b"101", b"103b", b"104b", b"105"]


def test_fast_backup_over_divergent_entries() -> None:
    """Reference: §5.3 (conflict term and index), §5.4.1. Logs with 50 divergent entries
    converge, each backup taking a few round trips rather than one per entry (6.824 Backup2B)."""
    net = SimNet(5, seed=8)
    ids = net.ids
    net.one(b"start", 5)
    leader1 = net.wait_leader()
    i1 = ids.index(leader1)
    ring = [ids[(i1 + k) % 5] for k in range(5)]  # leader1 first, then the others in order

    # leader1 and one follower in a minority: 50 entries that never commit.
    for n in ring[2:]:
        net.isolate(n)
    for i in range(50):
        net.propose(leader1, f"lost{i}".encode())
    net.tick(2)

    # The other three commit 50 entries.
    for n in ring[:2]:
        net.isolate(n)
    for n in ring[2:]:
        net.rejoin(n)
    for i in range(50):
        net.one(f"a{i}".encode(), 3)

    # Their leader and one follower diverge with 50 more uncommitted entries.
    leader2 = net.wait_leader(among=ring[2:])
    other = ring[2] if ring[2] != leader2 else ring[3]
    net.isolate(other)
    for i in range(50):
        net.propose(leader2, f"lost2-{i}".encode())
    net.tick(2)

    # The first minority comes back with `other`, whose log is newer: it must lead them.
    for n in ids:
        net.isolate(n)
    for n in (*ring[:2], other):
        net.rejoin(n)
    for i in range(50):
        net.one(f"b{i}".encode(), 3)

    rejects_before = net.sent[MessageType.APP_RESP]
    appends_before = net.sent[MessageType.APP]
    for n in ids:
        net.rejoin(n)
    net.one(b"end", 5)
    net.tick(2)
    expected = [b"start", *(f"a{i}".encode() for i in range(50))]
    expected += [*(f"b{i}".encode() for i in range(50)), b"end"]
    assert all(net.commands(n) == expected for n in ids)
    # Two nodes each 50+ divergent entries behind catch up in a few round trips.
    assert net.sent[MessageType.APP] - appends_before < 60
    assert net.sent[MessageType.APP_RESP] - rejects_before < 60


def test_fast_backup_skips_a_divergent_term_in_one_round() -> None:
    """Reference: §5.3, the conflict-term optimisation. A follower with 50 divergent entries
    of an old term, behind a leader whose log is 100 entries longer, is repaired after one
    rejection, not after one rejection per entry."""
    net = SimNet(5, seed=12)
    net.one(b"start", 5)
    leader1 = net.wait_leader()
    net.isolate(leader1)
    for i in range(50):
        net.propose(leader1, f"lost{i}".encode())
    rest = [n for n in net.ids if n != leader1]
    for i in range(100):
        net.one(f"a{i}".encode(), 4)
    # A new election after the 100 entries, so the leader's first guess for leader1 is its
    # log end, 100 entries past where they agree.
    leader2 = net.wait_leader(among=rest)
    net.isolate(leader2)
    leader3 = net.wait_leader(among=[n for n in rest if n != leader2])
    net.rejoin(leader2)

    rejections: list[Message] = []

    def record_rejection(m: Message) -> bool:
        if m.type == MessageType.APP_RESP and m.reject:
            rejections.append(m)
        return False

    net.filter(record_rejection)
    net.rejoin(leader1)
    net.one(b"end", 5)
    net.tick(2)
    expected = [b"start", *(f"a{i}".encode() for i in range(100)), b"end"]
    assert net.commands(leader1) == expected
    assert net.leader() == leader3
    assert 1 <= len([m for m in rejections if m.src == leader1]) <= 2


def test_message_count_is_sane() -> None:
    """Reference: §5.3 (6.824 TestCount2B). Agreement costs a bounded number of messages, and
    an idle cluster sends heartbeats only."""
    net = SimNet(3, seed=9, heartbeat_tick=2)
    net.wait_leader()
    before = sum(net.sent.values())
    for i in range(10):
        net.one(f"c{i}".encode(), 3, retry=False)
    per_command = (sum(net.sent.values()) - before) / 10
    assert per_command < 20
    net.tick(1)
    idle_before = sum(net.sent.values())
    net.tick(10)
    idle = sum(net.sent.values()) - idle_before
    # A heartbeat and its response per follower every 2 ticks.
    assert idle <= 2 * 2 * 5 + 4


def test_a_follower_catches_up_on_large_entries_in_frames_a_link_accepts() -> None:
    """Issue 10 item 2, at its real size: 600 entries of 150 KiB written while a follower was
    down. Bounded by count alone, the catch-up append was 512 entries, 78 MB: over the peer
    frame limit, refused by the link forever. Bounded by bytes too (etcd's MaxSizePerMsg,
    Config.max_msg_bytes), each append fits, and the follower catches up."""
    from splitbrain.raft import codec
    from splitbrain.raft.raft import Config

    defaults = Config("n1", ("n1",))
    net = SimNet(3, seed=5, max_msg_entries=defaults.max_msg_entries)  # the real defaults
    leader = net.wait_leader()
    follower = next(n for n in net.ids if n != leader)
    net.crash(follower)
    value = b"v" * 150 * 1024
    for _ in range(600):
        net.propose(leader, value)
    last = net.status(leader).last_index
    sizes: list[int] = []

    def measure(msg: Message) -> bool:
        if msg.type is MessageType.APP and msg.dst == follower and msg.entries:
            sizes.append(len(codec.encode_message(msg)))
        return False  # deliver it

    net.filter(measure)
    net.restart(follower)
    for _ in range(50 * ELECTION):
        if net.status(follower).last_index == last:
            break
        net.tick()
    assert net.status(follower).last_index == last
    assert len(sizes) >= 88 and max(sizes) < codec.MAX_FRAME  # 600 x 150 KiB, 1 MiB at a time
    assert max(sizes) <= defaults.max_msg_bytes + 1024

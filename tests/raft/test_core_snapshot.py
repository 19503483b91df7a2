"""Snapshots in the core (Raft §7): compaction, InstallSnapshot in chunks, and odd chunks."""

from __future__ import annotations

import random

import pytest

from splitbrain.raft.log import RaftLog
from splitbrain.raft.messages import Entry, HardState, Message, MessageType, Snapshot
from splitbrain.raft.rawnode import COMPACTED, Config, RawNode

PEERS = ("n1", "n2", "n3")
SNAP, SNAP_RESP, APP, APP_RESP = (MessageType.SNAPSHOT, MessageType.SNAPSHOT_RESP,
                                  MessageType.APP, MessageType.APP_RESP)


def entries(terms: list[int], start: int = 1) -> list[Entry]:
    return [Entry(t, i, data=f"e{i}t{t}".encode()) for i, t in enumerate(terms, start)]


class Cluster:
    """Cores driven by hand: `run()` hands out Readies and delivers messages until quiet."""

    def __init__(self, logs: dict[str, list[Entry]], *, chunk: int = 4,
                 check=None, term: int = 1) -> None:  # fmt: skip
        self.nodes: dict[str, RawNode] = {}
        self.installed: dict[str, list[Snapshot]] = {n: [] for n in PEERS}
        self.applied: dict[str, list[int]] = {n: [] for n in PEERS}
        self.down: set[str] = set()
        self.sent: list[Message] = []
        for n in PEERS:
            config = Config(n, PEERS, snapshot_chunk=chunk, snapshot_check=check)
            log = logs.get(n, [])
            self.nodes[n] = RawNode(config, hard_state=HardState(term, None, 0), entries=log,
                                    rng=random.Random(n))  # fmt: skip

    def run(self, rounds: int = 200) -> None:
        for _ in range(rounds):
            busy = False
            for n, node in self.nodes.items():
                if n in self.down or not node.has_ready():
                    continue
                busy = True
                rd = node.ready()
                if rd.snapshot is not None:
                    self.installed[n].append(rd.snapshot)
                    self.applied[n].append(rd.snapshot.index)
                self.applied[n] += [e.index for e in rd.committed_entries]
                node.advance(rd)
                for m in rd.messages:
                    self.sent.append(m)
                    if m.dst not in self.down:
                        self.nodes[m.dst].step(m)
            if not busy:
                return

    def elect(self, leader: str) -> None:
        self.nodes[leader].campaign()
        self.run()
        assert self.nodes[leader].status().role == "leader"


def test_a_compacted_log_keeps_terms_and_appends_after_the_snapshot():
    log = RaftLog(entries([1, 1, 2, 2, 3]), committed=5)
    log.applied = 5
    log.compact(3)
    assert (log.offset, log.last_index, log.term(3), log.term(5)) == (3, 5, 2, 3)
    assert log.matches(3, 2) and not log.matches(2, 1)  # compacted: no longer asked
    assert [e.index for e in log.slice(4, 6)] == [4, 5]
    assert log.find_conflict_by_term(5, 1) == (3, 2)  # never below the snapshot
    with pytest.raises(ValueError, match="only 5 applied"):
        log.compact(6)
    restarted = RaftLog(entries([3, 3], start=4), committed=0, snapshot=(3, 2))
    assert (restarted.committed, restarted.applied, restarted.last_index) == (3, 3, 5)


@pytest.mark.parametrize(("mine", "kept"), [
    ([1, 1, 2, 2, 2], [5]),  # holds the snapshot's last entry with its term: keep the suffix
    ([1, 1, 3, 3, 3], []),  # a conflicting entry there: discard the whole log
    ([1], []),  # shorter than the snapshot: nothing to keep
])
def test_restore_follows_the_install_snapshot_rules(mine, kept):
    log = RaftLog(entries(mine))
    discarded = log.restore(4, 2)
    assert discarded == (not kept)
    assert (log.offset, log.committed, log.applied) == (4, 4, 4)
    assert [e.index for e in log.slice(5, log.last_index + 1)] == kept
    assert log.last_term == 2  # the kept entry 5, or the snapshot itself


def test_a_follower_behind_the_snapshot_gets_it_in_chunks_and_catches_up():
    full = entries([1] * 10)
    c = Cluster({"n1": full, "n2": full}, chunk=4)
    c.down.add("n3")
    c.elect("n1")
    leader = c.nodes["n1"]
    for i in range(3):
        leader.propose(f"x{i}".encode())
    c.run()
    status = leader.status()
    data = bytes(range(10)) * 3  # 30 bytes: 8 chunks of 4
    leader.compact(status.applied, data)
    assert leader.log_term(status.applied - 1) == COMPACTED
    c.down.discard("n3")
    leader.propose(b"after")
    for _ in range(3):
        leader.tick()
        c.run()
    chunks = [m for m in c.sent if m.type is SNAP and m.dst == "n3"]
    assert {len(m.data) for m in chunks} <= {2, 4}
    assert b"".join(m.data for m in chunks if m.offset % 4 == 0 and m.offset < 30)[:30] == data
    assert chunks[-1].done and chunks[-1].offset == 28
    [snap] = c.installed["n3"]
    assert (snap.index, snap.data) == (status.applied, data)
    follower = c.nodes["n3"].status()
    assert follower.applied == leader.status().commit == follower.last_index
    assert c.applied["n3"][0] == status.applied  # applies go on from the snapshot
    assert c.applied["n3"] == list(range(status.applied, follower.applied + 1))


def test_a_follower_that_has_the_snapshot_already_answers_with_its_commit():
    c = Cluster({})
    node = c.nodes["n2"]
    node.step(Message(APP, "n1", "n2", 1, entries=tuple(entries([1, 1])), commit=2))
    node.ready()
    node.step(Message(SNAP, "n1", "n2", 1, index=2, log_term=1, data=b"abc", done=True))
    rd = node.ready()
    assert rd.snapshot is None
    assert [(m.type, m.index) for m in rd.messages][-1] == (APP_RESP, 2)


@pytest.mark.parametrize("odd", [
    Message(SNAP, "n1", "n2", 1, index=5, log_term=1, offset=3, data=b"late"),  # no start
    Message(SNAP, "n1", "n2", 1, index=5, log_term=9, data=b"x", done=True),  # term > leader's
    Message(SNAP, "n1", "n2", 1, index=5, log_term=1, data=b"bad", done=True),  # check refuses
    Message(SNAP, "n1", "n2", 0, index=5, log_term=0, data=b"ok", done=True),  # stale term
    Message(SNAP, "n1", "n2", 1, index=0, log_term=0, data=b"", done=True),  # index 0
    Message(SNAP_RESP, "n1", "n2", 1, index=5, offset=2**40),  # a response to a non-leader
])
def test_odd_snapshot_chunks_are_refused_without_installing_or_raising(odd):
    c = Cluster({}, check=lambda index, term, data: data != b"bad")
    node = c.nodes["n2"]
    node.step(odd)
    rd = node.ready()
    assert rd.snapshot is None
    assert node.status().applied == 0
    assert all(m.type is not APP_RESP or m.index == 0 for m in rd.messages)


def test_a_chunk_sent_again_replaces_what_it_covers_and_a_gap_asks_for_the_right_offset():
    c = Cluster({})
    node = c.nodes["n2"]

    def chunk(offset: int, data: bytes, done: bool = False) -> tuple:
        node.step(Message(SNAP, "n1", "n2", 1, index=5, log_term=1, offset=offset, data=data,
                          done=done))  # fmt: skip
        rd = node.ready()
        node.advance(rd)
        return rd.snapshot, [(m.type, m.offset, m.reject) for m in rd.messages]

    assert chunk(0, b"abcd") == (None, [(SNAP_RESP, 4, False)])
    assert chunk(0, b"abcd") == (None, [(SNAP_RESP, 4, False)])  # duplicated
    assert chunk(8, b"ijkl") == (None, [(SNAP_RESP, 4, True)])  # a gap: send from 4
    snap, msgs = chunk(4, b"ef", done=True)
    assert snap is not None and snap.data == b"abcdef" and msgs == [(APP_RESP, 0, False)]
    assert node.status().applied == 5


def test_an_oversized_incoming_snapshot_is_dropped(monkeypatch):
    monkeypatch.setattr("splitbrain.raft.raft.MAX_SNAPSHOT", 6)
    c = Cluster({})
    node = c.nodes["n2"]
    node.step(Message(SNAP, "n1", "n2", 1, index=5, log_term=1, data=b"abcd"))
    node.step(Message(SNAP, "n1", "n2", 1, index=5, log_term=1, offset=4, data=b"efgh",
                      done=True))  # fmt: skip
    rd = node.ready()
    assert rd.snapshot is None
    assert rd.messages[-1].type is SNAP_RESP and rd.messages[-1].offset == 0

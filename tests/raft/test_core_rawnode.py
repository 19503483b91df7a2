"""The RawNode contract the runtime codes against (docs/architecture.md): the order of effects
in a Ready, batching, restart from durable state, NotLeader, Status, Config validation."""

from __future__ import annotations

import random

import pytest

from splitbrain.raft.messages import Entry, EntryType, HardState, Message, MessageType
from splitbrain.raft.rawnode import Config, NotLeader, RawNode, Status


def single(**config) -> RawNode:
    return RawNode(
        Config("n1", ("n1",), **config), hard_state=HardState(), entries=(), rng=random.Random(1)
    )


def run_until_leader(node: RawNode) -> None:
    for _ in range(100):
        node.tick()
        while node.has_ready():
            node.advance(node.ready())
        if node.status().role == "leader":
            return
    raise AssertionError("no leader")


def test_a_leaders_own_entry_commits_only_after_it_is_persisted() -> None:
    """Reference: Figure 2, §5.3; etcd's rule: the leader's append counts once durable."""
    node = single()
    run_until_leader(node)
    index, term = node.propose(b"x")
    rd = node.ready()
    assert [e.data for e in rd.entries] == [b"x"]
    assert rd.committed_entries == ()
    assert node.status().commit < index
    node.advance(rd)  # the runtime has fsynced rd.entries
    rd = node.ready()
    assert [(e.index, e.term, e.data) for e in rd.committed_entries] == [(index, term, b"x")]
    assert rd.hard_state is not None and rd.hard_state.commit == index
    node.advance(rd)
    assert node.status().applied == index
    assert not node.has_ready()


def test_many_proposals_make_one_ready_with_one_append_per_follower() -> None:
    """Batching: proposals between two ready() calls are persisted and sent together."""
    ids = ("n1", "n2", "n3")
    node = RawNode(
        Config("n1", ids, pre_vote=False),
        hard_state=HardState(term=1, vote="n1"),
        entries=(),
        rng=random.Random(1),
    )
    node.campaign()
    rd = node.ready()
    assert rd.hard_state == HardState(term=2, vote="n1", commit=0)
    assert {m.type for m in rd.messages} == {MessageType.VOTE}
    node.advance(rd)

    for peer in ("n2", "n3"):
        node.step(Message(MessageType.VOTE_RESP, peer, "n1", 2))
    assert node.status().role == "leader"
    node.advance(node.ready())
    for peer in ("n2", "n3"):  # both acknowledge the no-op: the leader streams to them now
        node.step(Message(MessageType.APP_RESP, peer, "n1", 2, index=1))
    node.advance(node.ready())
    for i in range(100):
        node.propose(f"c{i}".encode())
    rd = node.ready()
    assert len(rd.entries) == 100
    appends = [m for m in rd.messages if m.type == MessageType.APP]
    assert sorted(m.dst for m in appends) == ["n2", "n3"]
    assert all(m.dst != "n1" for m in rd.messages)


def test_a_restarted_node_reapplies_from_index_one() -> None:
    """Restart contract: built from the persisted hard state and entries, applied starts at 0."""
    entries = [Entry(1, 1, EntryType.NOOP), Entry(1, 2, EntryType.NORMAL, b"a")]
    node = RawNode(
        Config("n1", ("n1", "n2", "n3")),
        hard_state=HardState(term=1, vote="n2", commit=2),
        entries=entries,
        rng=random.Random(1),
    )
    assert node.status() == Status("n1", "follower", 1, None, 2, 0, 2)
    rd = node.ready()
    assert rd.committed_entries == tuple(entries)
    assert rd.entries == () and rd.hard_state is None and rd.messages == ()
    node.advance(rd)
    assert node.status().applied == 2


def test_not_leader_carries_the_known_leader() -> None:
    node = RawNode(
        Config("n2", ("n1", "n2", "n3")),
        hard_state=HardState(term=3),
        entries=(),
        rng=random.Random(1),
    )
    with pytest.raises(NotLeader) as refused:
        node.propose(b"x")
    assert refused.value.leader_hint is None

    node.step(Message(MessageType.HEARTBEAT, "n1", "n2", 3))
    with pytest.raises(NotLeader) as refused:
        node.read_index(b"r")
    assert refused.value.leader_hint == "n1"


def test_election_timeouts_are_drawn_from_the_injected_rng() -> None:
    """§5.2: randomized in [election_tick, 2 * election_tick); the same seed, the same draw."""

    def first_campaign_tick(seed: int) -> int:
        node = RawNode(
            Config("n1", ("n1", "n2", "n3"), election_tick=15),
            hard_state=HardState(),
            entries=(),
            rng=random.Random(seed),
        )
        for tick in range(1, 100):
            node.tick()
            if node.status().role != "follower":
                return tick
        raise AssertionError("never campaigned")

    draws = [first_campaign_tick(seed) for seed in range(40)]
    assert all(15 <= d < 30 for d in draws)
    assert len(set(draws)) > 5
    assert draws == [first_campaign_tick(seed) for seed in range(40)]


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"election_tick": 1}, "heartbeat_tick < election_tick"),
        ({"max_msg_entries": 0}, "max_msg_entries"),
        ({"unsafe": frozenset({"stale-reads"})}, "unknown unsafe flag"),
    ],
)
def test_bad_config_is_refused_with_the_field_named(config: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Config("n1", ("n1",), **config)


def test_bad_durable_state_is_refused() -> None:
    with pytest.raises(ValueError, match="not contiguous"):
        RawNode(
            Config("n1", ("n1",)),
            hard_state=HardState(),
            entries=[Entry(1, 2)],
            rng=random.Random(1),
        )
    with pytest.raises(ValueError, match="commit 5 is beyond the last log index 1"):
        RawNode(
            Config("n1", ("n1",)),
            hard_state=HardState(term=1, commit=5),
            entries=[Entry(1, 1)],
            rng=random.Random(1),
        )


def test_an_ack_for_entries_replaced_in_the_same_ready_is_not_sent() -> None:
    """Reference: §5.3, Figure 2 ("before responding to RPCs"). A follower acknowledges entries
    of term 1, then, before its next Ready, a leader of term 2 replaces them: the Ready persists
    the replacement, so the old acknowledgement would promise entries it does not hold."""
    node = RawNode(
        Config("n3", ("n1", "n2", "n3")),
        hard_state=HardState(term=1),
        entries=[Entry(1, 1)],
        rng=random.Random(1),
    )
    old = (Entry(1, 2, data=b"a"), Entry(1, 3, data=b"b"))
    node.step(Message(MessageType.APP, "n1", "n3", 1, log_term=1, index=1, entries=old))
    new = (Entry(2, 2, data=b"c"),)
    node.step(Message(MessageType.APP, "n2", "n3", 2, log_term=1, index=1, entries=new))
    rd = node.ready()
    assert rd.entries == new
    acks = [(m.dst, m.index) for m in rd.messages if m.type == MessageType.APP_RESP]
    assert acks == [("n2", 2)]

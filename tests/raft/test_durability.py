"""The node's white-box invariants (durability.py): promises a message makes about the disk."""

from splitbrain.raft.durability import PROMISES, Durability
from splitbrain.raft.messages import Entry, HardState, Message, MessageType


def ack(index: int, reject: bool = False) -> Message:
    return Message(MessageType.APP_RESP, "n2", "n1", term=3, index=index, reject=reject)


def vote(term: int, to: str, reject: bool = False) -> Message:
    return Message(MessageType.VOTE_RESP, "n2", to, term=term, reject=reject)


def entries(lo: int, hi: int, term: int = 3) -> tuple[Entry, ...]:
    return tuple(Entry(term, i) for i in range(lo, hi + 1))


def test_an_ack_may_promise_only_what_the_log_durably_holds() -> None:
    d = Durability(HardState(term=3, vote="n1", commit=2), last_index=5)
    assert d.broken_promise(ack(5)) is None
    assert d.broken_promise(ack(9, reject=True)) is None  # a rejection promises nothing
    assert d.broken_promise(ack(6)) == {"rule": "ack-before-durable", "to": "n1", "term": 3,
                                        "index": 6, "durable": 5}
    d.saved(None, entries(6, 8))
    assert d.broken_promise(ack(8)) is None
    # A conflict replaces entries 4..: until that write returns, 4.. are not what we hold.
    d.writing(entries(4, 4, term=4))
    assert d.broken_promise(ack(4))["durable"] == 3  # type: ignore[index]
    d.saved(None, entries(4, 4, term=4))
    assert d.broken_promise(ack(4)) is None and d.broken_promise(ack(5)) is not None
    # One Ready answered the term-3 leader (up to 8), then a term-4 leader replaced 5..: the
    # term-3 ack was true when sent in order, and its leader is deposed.
    d.saved(HardState(term=4, vote=None), entries(5, 5, term=4))
    assert d.broken_promise(ack(8)) is None
    assert d.broken_promise(Message(MessageType.APP_RESP, "n2", "n1", term=4, index=8)) == {
        "rule": "ack-before-durable", "to": "n1", "term": 4, "index": 8, "durable": 5}


def test_a_granted_vote_must_be_durable_first() -> None:
    d = Durability(HardState(term=3, vote=None), last_index=0)
    assert d.broken_promise(vote(4, "n3", reject=True)) is None
    assert d.broken_promise(vote(4, "n3")) == {"rule": "vote-before-durable", "to": "n3",
                                               "term": 4, "durable_term": 3,
                                               "durable_vote": None}
    d.saved(HardState(term=4, vote="n3"), ())
    assert d.broken_promise(vote(4, "n3")) is None
    assert d.broken_promise(vote(4, "n1")) is not None  # a second vote in one term
    # Voted in term 4, then moved to term 5 in the same Ready: a restart is in term 5 and can
    # never vote in 4 again.
    d.saved(HardState(term=5, vote="n1"), ())
    assert d.broken_promise(vote(4, "n3")) is None
    assert {MessageType.APP_RESP, MessageType.VOTE_RESP} == PROMISES


def test_the_commit_index_never_goes_backwards_within_a_life() -> None:
    d = Durability(HardState(term=3, commit=4), last_index=9)
    assert d.commit_to(4) is None and d.commit_to(7) is None
    assert d.commit_to(6) == {"rule": "commit-regress", "commit": 6, "before": 7}

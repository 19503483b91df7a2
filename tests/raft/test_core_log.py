"""The in-memory log and the quorum arithmetic, against simple models (Raft §5.3, Figure 2)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from splitbrain.raft.log import RaftLog
from splitbrain.raft.messages import Entry
from splitbrain.raft.quorum import committed_index, majority

terms = st.lists(st.integers(1, 4), max_size=12).map(sorted)


def entries(term_list: list[int], start: int = 1, tag: str = "") -> list[Entry]:
    return [Entry(t, i, data=f"{tag}{i}".encode()) for i, t in enumerate(term_list, start)]


@settings(deadline=None)  # tiny examples; a loaded CI machine must not flake
@given(old=terms, prev=st.integers(0, 12), new=terms, commit=st.integers(0, 30))
def test_maybe_append_follows_figure2(old: list[int], prev: int, new: list[int], commit: int):
    """Receiver rules 2-5: reject without a match at prevLogIndex; otherwise delete from the
    first conflict on, append what is new, and commit up to min(leaderCommit, last new)."""
    log = RaftLog(entries(old))
    prev = min(prev, len(old))
    prev_term = old[prev - 1] if prev else 0
    floor = prev_term
    sent = entries([max(t, floor) for t in new], prev + 1, tag="new")
    result = log.maybe_append(prev, prev_term, commit, sent)
    assert result is not None
    last_new, truncated = result
    assert last_new == prev + len(sent)
    model = entries(old)[:prev]
    existing = entries(old)[prev:]
    for offset, entry in enumerate(sent):
        if offset < len(existing) and existing[offset].term == entry.term:
            model.append(existing[offset])
            continue
        model += sent[offset:]
        assert truncated == (entry.index if offset < len(existing) else 0)
        break
    else:
        model += existing[len(sent) :]
        assert truncated == 0
    assert log.slice(1, log.last_index + 1) == tuple(model)
    assert log.committed == min(commit, last_new)
    if truncated:
        assert log.stable == log.persisting == truncated - 1


def test_maybe_append_rejects_a_mismatch_at_prev() -> None:
    log = RaftLog(entries([1, 1, 2]))
    assert log.maybe_append(3, 1, 3, entries([3], 4)) is None
    assert log.maybe_append(4, 2, 3, entries([3], 5)) is None
    assert log.last_index == 3 and log.committed == 0


def test_conflict_by_term_skips_a_whole_term() -> None:
    log = RaftLog(entries([1, 1, 2, 2, 2, 5, 5]))
    assert log.find_conflict_by_term(7, 4) == (5, 2)
    assert log.find_conflict_by_term(7, 1) == (2, 1)
    assert log.find_conflict_by_term(99, 0) == (0, 0)


def test_cursors_hand_out_each_entry_once() -> None:
    log = RaftLog()
    for entry in entries([1, 1, 1]):
        log.append_new(entry)
    assert [e.index for e in log.take_unstable()] == [1, 2, 3]
    assert log.take_unstable() == ()
    log.stable_to(3, 1)
    log.commit_to(2)
    assert [e.index for e in log.take_committed()] == [1, 2]
    assert log.take_committed() == ()
    log.commit_to(3)
    assert [e.index for e in log.take_committed()] == [3]


@settings(deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=9))
def test_committed_index_is_held_by_a_majority(matches: list[int]) -> None:
    index = committed_index(matches)
    assert sum(m >= index for m in matches) >= majority(len(matches))
    assert sum(m >= index + 1 for m in matches) < majority(len(matches))

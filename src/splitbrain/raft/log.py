"""The in-memory Raft log: every entry since index 1, and how far it is persisted and applied.

There are no snapshots, so the whole log lives in one list whose position i holds the entry of
index i (position 0 is a sentinel of term 0, which makes "prevLogIndex = 0" match like any other
index). Five cursors split it, always `applied <= applying <= committed <= last_index` and
`stable <= persisting <= last_index`:

- `stable`: entries up to here are known durable (the runtime called advance after fsync);
- `persisting`: entries up to here were handed out in a Ready to be persisted;
- `committed`: known committed (Raft §5.3, §5.4.2);
- `applying`/`applied`: handed out to apply / applied.

Rules kept: entries are only ever appended or, on a follower, truncated at a conflict
(Raft §5.3: "delete the existing entry and all that follow it"); a truncation pulls `stable` and
`persisting` back so the replacing entries are persisted again. Work is O(batch), never O(log).
"""

from __future__ import annotations

from collections.abc import Sequence

from splitbrain.raft.messages import Entry, EntryType

_SENTINEL = Entry(term=0, index=0, type=EntryType.NOOP)


class RaftLog:
    __slots__ = ("_entries", "applied", "applying", "committed", "persisting", "stable")

    def __init__(self, entries: Sequence[Entry] = (), committed: int = 0) -> None:
        for position, entry in enumerate(entries, 1):
            if entry.index != position:
                raise ValueError(f"log entry {position} has index {entry.index}: not contiguous")
        self._entries: list[Entry] = [_SENTINEL, *entries]
        if not 0 <= committed <= len(entries):
            raise ValueError(f"commit {committed} is beyond the last log index {len(entries)}")
        self.stable = self.persisting = len(entries)
        self.committed = committed
        self.applying = self.applied = 0  # a restarted node re-applies from index 1

    # -- queries -----------------------------------------------------------------------------

    @property
    def last_index(self) -> int:
        return len(self._entries) - 1

    @property
    def last_term(self) -> int:
        return self._entries[-1].term

    def term(self, index: int) -> int:
        """The term of the entry at `index`; 0 for index 0 (callers keep index <= last_index)."""
        return self._entries[index].term

    def matches(self, index: int, term: int) -> bool:
        return index < len(self._entries) and self._entries[index].term == term

    def slice(self, lo: int, hi: int, max_bytes: int | None = None) -> tuple[Entry, ...]:
        """Entries with lo <= index < hi; with `max_bytes`, only the first ones whose data
        fits in that many bytes, but always at least one (etcd's limitSize)."""
        entries = self._entries[lo:hi]
        if max_bytes is not None:
            size = 0
            for n, entry in enumerate(entries):
                size += len(entry.data)
                if size > max_bytes and n:
                    return tuple(entries[:n])
        return tuple(entries)

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Raft §5.4.1: is a log ending at (last_index, last_term) as up to date as ours?"""
        mine = self.last_term
        return last_term > mine or (last_term == mine and last_index >= self.last_index)

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The largest index <= `index` whose term is <= `term`, and that term.

        Fast backtracking (Raft §5.3, the "conflict term" optimisation): one rejection skips a
        whole term of divergent entries instead of one entry.
        """
        index = min(index, self.last_index)
        entries = self._entries
        while index > 0 and entries[index].term > term:
            index -= 1
        return index, entries[index].term

    # -- changes -----------------------------------------------------------------------------

    def append_new(self, entry: Entry) -> None:
        """A leader's own new entry, always at last_index + 1."""
        self._entries.append(entry)

    def maybe_append(
        self, prev_index: int, prev_term: int, commit: int, entries: Sequence[Entry]
    ) -> tuple[int, int] | None:
        """AppendEntries on a follower (Raft Figure 2, receiver rules 2-5).

        Returns (last new index, first truncated index or 0), or None when the log does not
        contain an entry at prev_index with prev_term.
        """
        if not self.matches(prev_index, prev_term):
            return None
        truncated = 0
        log = self._entries
        for offset, entry in enumerate(entries):
            index = entry.index
            if index < len(log) and log[index].term == entry.term:
                continue
            if index < len(log):
                truncated = index
                del log[index:]
                self.stable = min(self.stable, index - 1)
                self.persisting = min(self.persisting, index - 1)
            log.extend(entries[offset:])
            break
        last_new = prev_index + len(entries)
        self.commit_to(min(commit, last_new))
        return last_new, truncated

    def commit_to(self, index: int) -> None:
        if index > self.committed:
            self.committed = index

    def take_unstable(self) -> tuple[Entry, ...]:
        """Entries not yet handed out for persistence; marks them handed out."""
        if self.persisting == self.last_index:
            return ()
        unstable = tuple(self._entries[self.persisting + 1 :])
        self.persisting = self.last_index
        return unstable

    def take_committed(self) -> tuple[Entry, ...]:
        """Committed entries not yet handed out to apply, in index order; marks them handed out."""
        if self.applying >= self.committed:
            return ()
        ready = tuple(self._entries[self.applying + 1 : self.committed + 1])
        self.applying = self.committed
        return ready

    def stable_to(self, index: int, term: int) -> None:
        # The term check ignores an acknowledgement for entries that a conflict replaced
        # between ready() and advance().
        if index > self.stable and self.matches(index, term):
            self.stable = index

    def applied_to(self, index: int) -> None:
        if index > self.applied:
            self.applied = index

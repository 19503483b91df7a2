"""The in-memory Raft log: every entry after the last snapshot, and how far it is persisted
and applied.

The log lives in one list whose position i holds the entry of index `offset + i`; position 0 is
a sentinel holding the snapshot's last included index and term (index 0, term 0 without a
snapshot), which makes "prevLogIndex = offset" match like any other index (Raft §7: the
snapshot replaces the entries up to it). Five cursors split it, always
`offset <= applied <= applying <= committed <= last_index` and
`stable <= persisting <= last_index`:

- `stable`: entries up to here are known durable (the runtime called advance after fsync);
- `persisting`: entries up to here were handed out in a Ready to be persisted;
- `committed`: known committed (Raft §5.3, §5.4.2);
- `applying`/`applied`: handed out to apply / applied.

Rules kept: entries are only ever appended or, on a follower, truncated at a conflict
(Raft §5.3: "delete the existing entry and all that follow it"); a truncation pulls `stable` and
`persisting` back so the replacing entries are persisted again. Work is O(batch), never O(log).
`compact(index)` drops applied entries into a snapshot; `restore(index, term)` installs a
snapshot from a leader (§7: keep the entries after it if the log holds its last entry with its
term, else discard the whole log). Indexes at or below `offset` are compacted: asking for their
term is a caller's bug, except `offset` itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from splitbrain.raft.messages import Entry, EntryType


def _head(index: int, term: int) -> Entry:
    """Position 0 of the list: the snapshot's last included entry (index 0, term 0: none)."""
    return Entry(term=term, index=index, type=EntryType.NOOP)


class RaftLog:
    __slots__ = ("_entries", "applied", "applying", "committed", "offset", "persisting", "stable")

    def __init__(self, entries: Sequence[Entry] = (), committed: int = 0,
                 snapshot: tuple[int, int] = (0, 0)) -> None:  # fmt: skip
        offset, term = snapshot
        for position, entry in enumerate(entries, offset + 1):
            if entry.index != position:
                raise ValueError(f"log entry {position} has index {entry.index}: not contiguous")
        self.offset = offset  # the snapshot's last included index: _entries[i] has offset + i
        self._entries: list[Entry] = [_head(offset, term), *entries]
        last = offset + len(entries)
        committed = max(committed, offset)  # a snapshot holds committed entries only
        if committed > last:
            raise ValueError(f"commit {committed} is beyond the last log index {last}")
        self.stable = self.persisting = last
        self.committed = committed
        # a restarted node re-applies from the snapshot (or index 1): its state machine holds it
        self.applying = self.applied = offset

    # -- queries -----------------------------------------------------------------------------

    @property
    def last_index(self) -> int:
        return self.offset + len(self._entries) - 1

    @property
    def last_term(self) -> int:
        return self._entries[-1].term

    @property
    def snapshot_term(self) -> int:
        return self._entries[0].term

    def term(self, index: int) -> int:
        """The term of the entry at `index`; 0 for index 0, the snapshot's for `offset`
        (callers keep offset <= index <= last_index)."""
        return self._entries[index - self.offset].term

    def matches(self, index: int, term: int) -> bool:
        i = index - self.offset
        return 0 <= i < len(self._entries) and self._entries[i].term == term

    def slice(self, lo: int, hi: int, max_bytes: int | None = None) -> tuple[Entry, ...]:
        """Entries with lo <= index < hi; with `max_bytes`, only the first ones whose data
        fits in that many bytes, but always at least one (etcd's limitSize)."""
        entries = self._entries[lo - self.offset : hi - self.offset]
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
        offset = self.offset
        index = max(min(index, self.last_index), offset)
        entries = self._entries
        while index > offset and entries[index - offset].term > term:
            index -= 1
        return index, entries[index - offset].term

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
        base = self.offset
        for n, entry in enumerate(entries):
            index = entry.index
            if index <= base:  # covered by our snapshot: committed, so it matches
                continue
            i = index - base
            if i < len(log) and log[i].term == entry.term:
                continue
            if i < len(log):
                truncated = index
                del log[i:]
                self.stable = min(self.stable, index - 1)
                self.persisting = min(self.persisting, index - 1)
            log.extend(entries[n:])
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
        unstable = tuple(self._entries[self.persisting + 1 - self.offset :])
        self.persisting = self.last_index
        return unstable

    def take_committed(self) -> tuple[Entry, ...]:
        """Committed entries not yet handed out to apply, in index order; marks them handed out."""
        if self.applying >= self.committed:
            return ()
        base = self.offset
        ready = tuple(self._entries[self.applying + 1 - base : self.committed + 1 - base])
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

    def compact(self, index: int) -> None:
        """Drop the entries up to `index` (applied, and now in a durable snapshot)."""
        if index <= self.offset:
            return
        if index > self.applied:
            raise ValueError(f"cannot compact to {index}: only {self.applied} applied")
        i = index - self.offset
        head = self._entries[i]
        self._entries = [_head(index, head.term), *self._entries[i + 1 :]]
        self.offset = index
        self.stable = max(self.stable, index)
        self.persisting = max(self.persisting, index)

    def restore(self, index: int, term: int) -> bool:
        """Install a leader's snapshot ending at (index, term), above our commit index (§7):
        keep the entries after it if we hold its last entry with its term, else discard the
        whole log. Returns whether the log was discarded."""
        keep = self.matches(index, term)
        if keep:
            self._entries = self._entries[index - self.offset :]
        else:
            self._entries = []
        self._entries[:1] = [_head(index, term)]
        self.offset = index
        last = self.last_index
        self.stable = min(max(self.stable, index), last)
        self.persisting = min(max(self.persisting, index), last)
        self.committed = max(self.committed, index)
        self.applied = self.applying = index
        return not keep

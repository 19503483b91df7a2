"""Commit safety: an entry applied anywhere stays out of reach of every election.

A node wins an election only with the votes of a majority, and a voter grants its vote only to
a candidate whose log is at least as up to date as its own (§5.4.1: a later last term, or the
same last term and a last index at least as high). So while a node lacks a committed entry, its
log must be less up to date than the logs of a majority: otherwise it could be elected and
replace the entry. Raft keeps this true at every instant after the commit. The committing
leader's entry of its own term is stored by a majority; any log without the committed entry
ends in an older term, or earlier in that one; and every later leader holds the entry, so the
majority's logs stay ahead. That holds for every log a node ever had, so the rule can be checked
on what the nodes' events say they stored, at the times they say it:

- each node's durable log, from its events (raft/events.py): `recovered` at the start of each
  life, `stored` after each write (emitted once the write is durable, flushed before any
  acknowledgement of it leaves), and the snapshots it installed;
- the highest index applied anywhere so far, with its term (the committed sequence), from the
  first apply of each index on any node.

`unsafe-commit`: at some instant, a node's log lacked the highest entry applied anywhere, yet it
was at least as up to date as the logs of a majority of the nodes (its own included). That is a
commit Raft's rules forbid (entries of an old term counted as committed, as in the paper's
Figure 8; a quorum miscounted; an acknowledgement sent before the write), caught when it
happens, whether or not an election later replaces the entry.

Event times are the machine's wall clock, which the nodes read past any clock fault
(raft/machine_clock.py), or the simulator's; a run with clock faults whose nodes could not is
not checked (agreement.py). A node whose events say nothing of
its log (another target, an older file) is left out: it lacks nothing, and counts towards no
majority. Memory: a few numbers per write and per applied index, in arrays.
"""

from __future__ import annotations

import bisect
import heapq
from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import Any

RULE = "unsafe-commit"
_REACH = 1 << 20  # how far past the indexes held an apply's index may grow the times column
_LIMIT = 1 << 63  # what the columns (signed 64 bits) hold
# Record kinds in a node's stream: a write, a life's start (the log recovered), a snapshot
# installed.
_STORED, _RECOVERED, _INSTALLED = 0, 1, 2


def _runs(value: Any) -> list[tuple[int, int]]:
    """`terms` of an event: [[index, term], ...] with increasing indexes (ValueError if not)."""
    if not isinstance(value, list):
        raise ValueError("field 'terms' must be a list of [index, term] pairs")
    runs: list[tuple[int, int]] = []
    for pair in value:
        if not (isinstance(pair, list) and len(pair) == 2 and all(type(x) is int for x in pair)):
            raise ValueError("field 'terms' must be a list of [index, term] pairs")
        if runs and pair[0] <= runs[-1][0]:
            raise ValueError("field 'terms': indexes must increase")
        runs.append((pair[0], pair[1]))
    return runs


def _fits(value: int) -> bool:
    return -_LIMIT <= value < _LIMIT


class _Stream:
    """One node's log records, in its file's order: (time, kind, first, last, term) in
    columns, with the entries' runs of a record that has more than one, or any (a recovery),
    kept aside. `first`..`last` are the indexes the record is about; `term` is the term of a
    write's single run, of a recovery's snapshot, or of an installed snapshot."""

    __slots__ = ("_a", "_b", "_c", "_kinds", "_times", "_wide")

    def __init__(self) -> None:
        self._times = array("q")
        self._kinds = bytearray()
        self._a, self._b, self._c = array("q"), array("q"), array("q")
        self._wide: dict[int, list[tuple[int, int]]] = {}

    def add(self, time: int, kind: int, first: int, last: int, term: int,
            runs: list[tuple[int, int]]) -> None:  # fmt: skip
        if not all(_fits(v) for v in (time, first, last, term, *(x for r in runs for x in r))):
            raise ValueError("a field of the log is beyond 64 bits")
        if len(runs) > 1 or (runs and kind == _RECOVERED):
            self._wide[len(self._times)] = runs
        self._times.append(time)
        self._kinds.append(kind)
        self._a.append(first)
        self._b.append(last)
        self._c.append(term)

    def __len__(self) -> int:
        return len(self._times)

    def __iter__(self) -> Iterator[tuple[int, int, int, int, int, list[tuple[int, int]]]]:
        wide = self._wide
        for i, time in enumerate(self._times):
            kind, first, term = self._kinds[i], self._a[i], self._c[i]
            runs = wide.get(i) or ([(first, term)] if kind == _STORED else [])
            yield time, kind, first, self._b[i], term, runs


class _View:
    """A node's durable log as its events describe it: entries up to `base` in a snapshot (the
    entry at `base` has `base_term`), then runs of one term each (`starts[i]`, `terms[i]`), up
    to `last`."""

    __slots__ = ("base", "base_term", "last", "starts", "terms")

    def __init__(self) -> None:
        self.base = self.base_term = self.last = 0
        self.starts: list[int] = []
        self.terms: list[int] = []

    def term_at(self, index: int) -> int | None:
        if index == self.base:
            return self.base_term
        if not self.base < index <= self.last:
            return None
        at = bisect.bisect_right(self.starts, index) - 1
        return self.terms[at] if at >= 0 else None

    def holds(self, index: int, term: int) -> bool:
        return index < self.base or self.term_at(index) == term

    def tip(self) -> tuple[int, int]:
        """(last term, last index): how up to date the log is."""
        return (self.term_at(self.last) or 0, self.last)

    def apply(self, kind: int, first: int, last: int, term: int,
              runs: list[tuple[int, int]]) -> None:  # fmt: skip
        """A record of _Stream: a write, a recovery (`first`: its snapshot's index, 0 if none),
        or a snapshot installed (of entry `first`)."""
        if kind == _STORED:
            cut = bisect.bisect_left(self.starts, first)
            del self.starts[cut:], self.terms[cut:]
            self._extend(runs)
            self.last = last
        elif kind == _RECOVERED:
            self.starts, self.terms = [], []
            self.base, self.base_term = first, term
            self._extend(runs)
            self.last = last
        elif first <= self.base:
            pass  # older than the snapshot it has: nothing changes
        elif self.term_at(first) != term or self.last <= first:  # the suffix conflicts
            self.starts, self.terms = [], []
            self.base, self.base_term, self.last = first, term, first
        else:  # installed over a log that holds its last entry: the suffix is kept
            keep = bisect.bisect_right(self.starts, first + 1) - 1
            if keep >= 0:
                self.starts[keep] = first + 1
                del self.starts[:keep], self.terms[:keep]
            self.base, self.base_term = first, term

    def _extend(self, runs: list[tuple[int, int]]) -> None:
        for start, term in runs:
            if self.terms and self.terms[-1] == term:
                continue  # the run before goes on
            self.starts.append(start)
            self.terms.append(term)


class CommitSafety:
    """Collects the nodes' log records and first applies while the events are read, then
    checks the rule over them in time order (`check`)."""

    def __init__(self) -> None:
        self._streams: dict[str, _Stream] = {}
        self._applied = array("q")  # [index]: the earliest time any node applied it, or 0

    def node(self, name: str) -> _Stream:
        return self._streams.setdefault(name, _Stream())

    def stored(self, stream: _Stream, time: int, first: Any, last: Any, terms: Any) -> None:
        """A `stored` event (ValueError names a bad field)."""
        for field, value in (("first", first), ("last", last)):
            if type(value) is not int:
                raise ValueError(f"field {field!r} must be an integer")
        runs = _runs(terms)
        if not runs or runs[0][0] != first or runs[-1][0] > last:
            raise ValueError("field 'terms' must start at 'first' and end by 'last'")
        stream.add(time, _STORED, first, last, runs[0][1] if len(runs) == 1 else 0, runs)

    def recovered(self, stream: _Stream, time: int, last: Any, terms: Any, snapshot: Any,
                  snapshot_term: Any) -> None:  # fmt: skip
        """A `recovered` event that describes the log (`terms`); one without says nothing."""
        if terms is None:
            return
        runs = _runs(terms)
        if type(last) is not int:
            raise ValueError("field 'last' must be an integer")
        if snapshot is None:
            snapshot = snapshot_term = 0
        elif type(snapshot) is not int or type(snapshot_term) is not int:
            raise ValueError("fields 'snapshot' and 'snapshot_term' must be integers")
        stream.add(time, _RECOVERED, snapshot, last, snapshot_term, runs)

    def installed(self, stream: _Stream, time: int, index: int, term: int) -> None:
        stream.add(time, _INSTALLED, index, index, term, [])

    def applied(self, index: int, time: int) -> None:
        """Some node applied `index` for the first time (in its life) at `time`."""
        times = self._applied
        # Left out: a time the column cannot hold (0 marks an index not applied yet), and an
        # index far past the others (only a damaged or hostile file has one).
        if not (0 < time < _LIMIT and 0 < index < 2 * len(times) + _REACH):
            return
        if index >= len(times):
            times.frombytes(bytes(8 * (max(index + 1, 2 * len(times)) - len(times))))
        if times[index] == 0 or time < times[index]:
            times[index] = time

    def check(self, cluster: int, term_of: Callable[[int], int | None],
              frontier: Sequence[tuple[int, int]], report: Callable[..., None]) -> int | None:
        """Report every instant a node enters the unsafe state; `cluster` is the number of
        nodes, `term_of(index)` the committed entry's term, `frontier` what `frontier()` gives.
        Returns the instants checked (None if no node's events describe its log)."""
        names = [name for name, stream in self._streams.items() if len(stream)]
        if not names:
            return None
        quorum = cluster // 2 + 1
        views = [_View() for _ in names]

        def records(i: int) -> Iterator[tuple[int, int, int, tuple[Any, ...]]]:
            for time, *record in self._streams[names[i]]:
                yield time, 0, i, tuple(record)

        # At one time, what a node stored comes before what was applied: a write is durable,
        # and acknowledged, before the entries it holds can commit.
        reached = ((t, 1, index, ()) for t, index in frontier)
        merged = heapq.merge(*(records(i) for i in range(len(names))), reached,
                             key=lambda r: (r[0], r[1]))
        frontier, term, checked = 0, 0, 0
        unsafe: set[int] = set()
        tips: list[tuple[int, int] | None] = [None] * len(views)  # None: not known yet
        for time, what, i, record in merged:
            if what == 1:  # the frontier moved to index i
                found = term_of(i)
                if found is None:
                    continue
                frontier, term = i, found
            else:
                views[i].apply(*record)
                tips[i] = views[i].tip()
            if not frontier:
                continue
            checked += 1
            for x, view in enumerate(views):
                mine = tips[x]
                if mine is None or view.holds(frontier, term):
                    unsafe.discard(x)
                    continue
                behind = [names[y] for y, tip in enumerate(tips) if tip and mine >= tip]
                if len(behind) < quorum:
                    unsafe.discard(x)
                elif x not in unsafe:
                    unsafe.add(x)
                    last_term, last = mine
                    report(RULE, f"{names[x]}'s log (last entry {last}, term {last_term}) lacked "
                           f"entry {frontier} (term {term}), applied by then, yet was as up to "
                           f"date as {len(behind)} of {cluster} nodes' logs "
                           f"({', '.join(behind)}): it could have been elected and replaced it",
                           node=names[x], index=frontier, term=term, time=time,
                           last=last, last_term=last_term, as_up_to_date_as=behind)
        return checked

    def frontier(self) -> list[tuple[int, int]]:
        """(time, index) each time the highest index applied anywhere grew, in time order:
        index i is reached at the earliest time any index >= i was first applied (read_safety.py
        checks reads against it too)."""
        times = self._applied
        reach: list[tuple[int, int]] = []
        earliest = 0
        for index in range(len(times) - 1, 0, -1):
            t = times[index]
            if t and (not earliest or t < earliest):
                earliest = t
                reach.append((t, index))
        reach.reverse()
        return reach


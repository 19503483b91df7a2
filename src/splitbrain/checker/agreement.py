"""Log agreement: the nodes' committed logs, read from nodes/*/events.jsonl (DESIGN.md).

Rules checked, each violation a `{"kind", "message", ...}` with the data a report needs:
- `divergent-entry`: two nodes applied different (term, id) at one index, or the same (term,
  id) with different contents (the `crc` of the entry's bytes: a damaged log), side by side;
- `lost-committed-entry`: after a restart a node applied a different entry at an index it had
  applied before (a committed entry did not survive the restart);
- `apply-gap` / `apply-reorder`: within one process life (from one "start" event to the next)
  applies must be contiguous and increasing; a life may begin at any index (its snapshot), and
  after a snapshot it installed (a `snapshot` event of kind "installed" at index S) a node's
  applies continue from S + 1;
- `divergent-snapshot`: two `snapshot` events at one index (of any nodes, taken or installed)
  name different digests of the state machine, or a different term than the entry applied
  there (the snapshot claims a history the log does not have);
- `two-leaders`: more than one node was leader in one term;
- `lost-write`: a write acknowledged to a client (an ok put/append/write/cas carrying a
  `request` id) is not in the committed sequence; `duplicate-apply`: a request id was executed
  at more than one index of the committed sequence (a copy the state machine recognised as a
  repeat, `"repeat": true`, was not executed: clients retry under one id). Ids starting with
  "noop" (or none) are no-ops.
- Durable state across a node's lives, from its `persisted` (a new term or vote made durable)
  and `recovered` (what a life starts from) events: `term-regress` (its term went backwards),
  `double-vote` (two votes in one term), `lost-vote` (a life started in the term of a vote it
  had recorded, without that vote), `commit-regress` (a life started below a commit index it
  had recorded).
- Broken invariants a node reports itself (`invariant` events, raft/durability.py), one
  violation of kind `rule` each: `ack-before-durable`, `vote-before-durable`,
  `commit-regress` (within a life), `overwrite-committed` (with the `index`); other rules are
  reported under their own names.
- `unsafe-commit` (commit_safety.py): an entry applied somewhere while a node without it had a
  durable log as up to date as a majority's, from the `recovered` and `stored` events that
  describe each node's log.
- `read-by-current-leader` and `read-sees-applied` (read_safety.py): a read answered after a
  leader of a later term was elected, or at an index below one applied before it arrived, from
  the `read` events.
  These two compare event times across nodes: with clock faults they are checked only if every
  life of every node stamped its events with the machine's clock (its `start` says
  `"clock": "machine"`, raft/machine_clock.py), which no clock fault skews.
Torn lines are dropped with a warning (eventfile.py); unknown events are skipped.

    agreement = Agreement()
    for node, path in files:
        agreement.add(node, path)          # HistoryError (`file:line: problem`) on a bad line
    result = agreement.result(calls)

Memory grows with the log, not with the events: a node re-applies its log (from its
snapshot) after every restart, and five nodes write millions of apply events an hour, so each
file is streamed (eventfile.py) and checked as it is read. What is kept is one entry per index,
the committed sequence (`_Entries`, in columns), and per node the ranges of indexes it applied
(`_Firsts`) and its first entries that differ from the committed one (rare: each is a
violation).
"""

from __future__ import annotations

import bisect
import heapq
import json
import os
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from splitbrain.checker.commit_safety import CommitSafety
from splitbrain.checker.eventfile import Batch, Event, EventFile
from splitbrain.checker.read_safety import ReadSafety
from splitbrain.gcpause import paused
from splitbrain.history import Call, HistoryError

WRITES = frozenset({"put", "append", "write", "cas"})
MAX_VIOLATIONS = 200  # per kind: enough to debug, bounded for results.json
# Violations about one node's own durable state or invariants, rather than logs compared.
NODE_KINDS = frozenset({"term-regress", "double-vote", "lost-vote", "commit-regress",
                        "ack-before-durable", "vote-before-durable", "overwrite-committed"})
# (term, id, repeat, crc): what an index holds. `repeat`: a repeated request the state machine
# did not execute again; `crc`: the CRC-32 of the entry's bytes, if the node reports it.
EntryKey = tuple[int, str | None, bool, int | None]


@dataclass(frozen=True, slots=True)
class HardStateEvent:
    """A durable hard state the node reported: `recovered` at a life's start, or `persisted`."""

    event: str  # "recovered" or "persisted"
    term: int
    vote: str | None
    commit: int
    life: int
    line: int
    time: int | None


@dataclass(frozen=True, slots=True)
class SnapshotEvent:
    """A snapshot the node took of its state machine, or installed from its leader."""

    index: int
    term: int
    digest: str
    installed: bool
    life: int
    line: int


def _int_field(obj: Any, name: str) -> int:
    value = getattr(obj, name)
    if type(value) is not int:
        raise ValueError(f"field {name!r} must be an integer, got {json.dumps(value)}")
    return value


class _Entries:
    """The committed sequence: at each index, the entry that the first node (in the order the
    nodes were added) applied there first. Columns indexed by log index, about 30 bytes an
    index besides the request id, never much longer than the entries they hold: an index far
    past them (only a damaged or hostile file has one) or a value beyond 64 bits is kept aside
    in `_odd`."""

    _PRESENT, _REPEAT, _CRC = 1, 2, 4
    _REACH = 1 << 20  # how far past twice the entries held an index may grow the columns

    def __init__(self) -> None:
        self._terms = array("q")
        self._crcs = array("q")
        self._flags = bytearray()
        self._ids: list[str | None] = []
        self._odd: dict[int, EntryKey] = {}
        self.count = 0

    def get(self, index: int) -> EntryKey | None:
        if 0 < index < len(self._flags):
            flags = self._flags[index]
            if flags:
                return (self._terms[index], self._ids[index], bool(flags & self._REPEAT),
                        self._crcs[index] if flags & self._CRC else None)  # fmt: skip
        return self._odd.get(index)

    def term(self, index: int) -> int | None:
        entry = self.get(index)
        return None if entry is None else entry[0]

    def put(self, index: int, entry: EntryKey) -> None:
        """Record the entry at an index that holds none yet."""
        self.count += 1
        term, rid, repeat, crc = entry
        if not (0 < index < max(len(self._flags), 2 * self.count + self._REACH) and _fits(
                term) and (crc is None or _fits(crc))):
            self._odd[index] = entry
            return
        if index >= len(self._flags):
            more = max(index + 1, 2 * len(self._flags)) - len(self._flags)
            self._terms.frombytes(bytes(8 * more))
            self._crcs.frombytes(bytes(8 * more))
            self._flags.extend(bytes(more))
            self._ids.extend([None] * more)
        self._terms[index] = term
        self._ids[index] = rid
        if crc is not None:
            self._crcs[index] = crc
        self._flags[index] = (self._PRESENT | (self._REPEAT if repeat else 0)
                              | (self._CRC if crc is not None else 0))  # fmt: skip

    def items(self) -> Iterable[tuple[int, EntryKey]]:
        """Every index and its entry, in index order."""
        flags = self._flags
        columns = (i for i in range(1, len(flags)) if flags[i])
        for index in heapq.merge(columns, sorted(self._odd)):  # no index is in both
            yield index, self.get(index)  # type: ignore[misc]


def _fits(value: int) -> bool:
    return -(1 << 63) <= value < (1 << 63)


class _Firsts:
    """The indexes a node applied, as sorted disjoint ranges, each with the life the node first
    applied them in: whether an index was applied before (and in which life) is a bisection,
    and a life that re-applies its log from the start finds its range at once. Past
    MAX_RANGES ranges (applies that jump about: only a broken node writes them) it keeps a map
    of index to life instead, so that no file makes it slow."""

    __slots__ = ("_at", "_ends", "_lives", "_map", "_starts")
    MAX_RANGES = 10_000

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._lives: list[int] = []
        self._at = -1  # the range found last
        self._map: dict[int, int] | None = None

    def life_of(self, index: int) -> int | None:
        """The life in which the node first applied `index`, or None if it never did."""
        if self._map is not None:
            return self._map.get(index)
        at, starts = self._at, self._starts
        if at >= 0 and starts[at] <= index:
            end = self._ends[at]
            if index <= end:
                return self._lives[at]
            if index == end + 1 and (at + 1 == len(starts) or starts[at + 1] > index):
                return None  # the next index of a life going on: the usual case
        at = bisect.bisect_right(starts, index) - 1
        if at >= 0 and index <= self._ends[at]:
            self._at = at
            return self._lives[at]
        return None

    def add(self, index: int, life: int) -> None:
        """Record a first apply of `index` (not in any range yet) in `life`."""
        if self._map is not None:
            self._map[index] = life
            return
        starts, ends, lives = self._starts, self._ends, self._lives
        at = self._at
        if not (at >= 0 and ends[at] == index - 1 and lives[at] == life):  # the usual case
            at = bisect.bisect_right(starts, index) - 1
            if at + 1 < len(starts) and starts[at + 1] == index + 1 and lives[at + 1] == life:
                starts[at + 1] = index  # the range after it grows down (applies going back)
                self._at = at + 1
                return
            if not (at >= 0 and ends[at] == index - 1 and lives[at] == life):
                at += 1  # a range of its own
                starts.insert(at, index)
                ends.insert(at, index - 1)
                lives.insert(at, life)
        ends[at] = index
        if at + 1 < len(starts) and starts[at + 1] == index + 1 and lives[at + 1] == life:
            ends[at] = ends[at + 1]
            del starts[at + 1], ends[at + 1], lives[at + 1]
        self._at = at
        if len(starts) > self.MAX_RANGES:
            self._map = {i: first for lo, hi, first in zip(starts, ends, lives, strict=True)
                         for i in range(lo, hi + 1)}
            self._starts, self._ends, self._lives = [], [], []


@dataclass(slots=True)
class NodeEvents:
    """What one node's file said, as far as the checks after reading need it."""

    node: str
    applied: int = 0  # apply events
    leader_terms: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    hard_states: list[HardStateEvent] = field(default_factory=list)
    invariants: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (line, event)
    snapshots: list[SnapshotEvent] = field(default_factory=list)
    firsts: _Firsts = field(default_factory=_Firsts)
    own: dict[int, EntryKey] = field(default_factory=dict)  # first entries unlike _Entries'
    # Its event times may follow its own clock: no life started, or one did not say they
    # are the machine's (raft/machine_clock.py).
    skewable: bool = True


def _add(violations: dict[str, list[dict[str, Any]]], kind: str, message: str,
         data: dict[str, Any]) -> None:  # fmt: skip
    found = violations.setdefault(kind, [])
    if len(found) < MAX_VIOLATIONS:
        found.append({"kind": kind, "message": message, **data})


class Agreement:
    """The log-agreement check, fed one node's events file at a time (see the module)."""

    def __init__(self, *, cluster: int | None = None, clock_faults: bool = False) -> None:
        """`cluster`: how many nodes the cluster has (default: the files added). With
        `clock_faults`, a node whose events are stamped with its own clock (its `start` does
        not say "machine": raft/machine_clock.py) makes the nodes' event times incomparable,
        and neither `unsafe-commit` nor the reads are checked."""
        self.nodes: list[NodeEvents] = []
        self.cluster = cluster
        self.clock_faults = clock_faults
        self._safety = CommitSafety()
        self._reads = ReadSafety()
        self._entries = _Entries()
        self._divergent: set[int] = set()
        self._violations: dict[str, list[dict[str, Any]]] = {}

    def _report(self, kind: str, message: str, **data: Any) -> None:
        _add(self._violations, kind, message, data)

    def add(self, node: str, path: str | os.PathLike[str]) -> NodeEvents:
        """Read and check one node's events. Raises HistoryError (`file:line: problem`) on a
        bad line; the checks of the nodes added before it are kept."""
        events = NodeEvents(node)
        file = EventFile(path)
        reading = _Reading(events, self._entries, self._divergent, self._report, self._safety,
                           self._reads)
        with paused():
            for batch in file.batches():
                reading.feed(batch, file.name)
        events.warnings = file.warnings
        self.nodes.append(events)
        return events

    def result(self, calls: Iterable[Call] = ()) -> dict[str, Any]:
        """The verdict over the nodes added so far and the history's calls."""
        nodes, entries = self.nodes, self._entries
        violations = {kind: list(found) for kind, found in self._violations.items()}

        def report(kind: str, message: str, **data: Any) -> None:
            _add(violations, kind, message, data)

        for index in sorted(self._divergent):
            canonical = entries.get(index)
            side_by_side = {n.node: n.own.get(index, canonical) for n in nodes
                            if n.firsts.life_of(index) is not None}  # fmt: skip
            report("divergent-entry", f"nodes applied different entries at index {index}: "
                   + ", ".join(f"{n} {_entry(e)}" for n, e in side_by_side.items()),  # type: ignore[arg-type]
                   index=index, entries={n: _side(e) for n, e in side_by_side.items()})  # type: ignore[arg-type]

        _check_snapshots(nodes, entries, report)
        safety = reads = "not checked: clock faults skew the nodes' event times"
        if not (self.clock_faults and any(n.skewable for n in nodes)):
            frontier = self._safety.frontier()
            checked = self._safety.check(self.cluster or len(nodes), entries.term, frontier,
                                         report)
            safety = ("not checked: no node's events describe its log" if checked is None
                      else f"checked at {checked} instants")
            answered = self._reads.check(frontier, report)
            reads = (f"checked {answered} read{'' if answered == 1 else 's'}" if answered
                     else "not checked: no node's events record a read it answered")

        leaders: dict[int, list[str]] = {}
        for events in nodes:
            for term in events.leader_terms:
                if events.node not in leaders.setdefault(term, []):
                    leaders[term].append(events.node)
        for term in sorted(leaders):
            if len(leaders[term]) > 1:
                report("two-leaders", f"{' and '.join(leaders[term])} were both leader in term "
                       f"{term}", term=term, nodes=leaders[term])

        # The committed sequence against what clients were told.
        committed: set[str] = set()
        executed: dict[str, int] = {}
        again: dict[str, list[int]] = {}
        for index, (_, rid, repeat, _) in entries.items():
            if not is_noop(rid):
                committed.add(rid)  # type: ignore[arg-type]
                if not repeat:
                    if rid in executed:
                        again.setdefault(rid, [executed[rid]]).append(index)  # type: ignore[index]
                    else:
                        executed[rid] = index  # type: ignore[index]
        for rid, at in sorted(again.items(), key=lambda item: item[1][0]):  # by first index
            report("duplicate-apply", f"request {rid} was executed {len(at)} times "
                   f"(indexes {', '.join(map(str, at))})", request=rid, indexes=at)
        if nodes:
            for call in calls:
                rid = call.request
                if call.type == "ok" and call.f in WRITES and rid is not None and (
                        rid not in committed):
                    report("lost-write", f"acknowledged {call.f} {json.dumps(call.value)} "
                           f"(request {rid}) is not in the committed log", request=rid,
                           op=call.to_json())

        for events in nodes:
            _check_hard_states(events, report)
            for line, event in events.invariants:
                rule = event["rule"]
                at = {"index": event["index"]} if rule == "overwrite-committed" and type(
                    event.get("index")) is int else {}  # the report shows the entries around it
                report(rule, f"{events.node} {_broken(rule, event)}", node=events.node,
                       line=line, time=event.get("time"), event=event, **at)

        found = [v for kind in sorted(violations) for v in violations[kind]]
        result: dict[str, Any] = {
            "valid": not found,
            "violations": found,
            "leaders": {str(t): leaders[t] for t in sorted(leaders)},
            "nodes": [n.node for n in nodes],
            "committed": entries.count,
            "commit_safety": safety,
            "read_safety": reads,
            "warnings": [w for n in nodes for w in n.warnings],
        }
        if found:
            counts = ", ".join(f"{len(v)} {k}" for k, v in sorted(violations.items()))
            result["cause"] = f"{found[0]['message']} ({counts})"
        if not nodes:
            result["note"] = "no nodes/*/events.jsonl: nothing to compare"
        return result


class _Reading:
    """One node's events as they are read: order within each life, agreement with its own
    earlier lives, and with the nodes read before it (through the committed sequence)."""

    def __init__(self, events: NodeEvents, entries: _Entries, divergent: set[int],
                 report: Callable[..., None], safety: CommitSafety, reads: ReadSafety
                 ) -> None:  # fmt: skip
        self.events = events
        self.safety = safety
        self.stream = safety.node(events.node)
        self.reads = reads
        self.reader = reads.node(events.node)
        self.entries = entries
        self.divergent = divergent  # indexes where a node's first entry is not the committed one
        self.report = report
        self.life = 0  # which process life (0 before the first "start")
        self.previous: tuple[int, int] | None = None  # (index, life) of the last apply

    def feed(self, batch: Batch, name: str) -> None:
        events = self.events
        for i, (number, e) in enumerate(zip(batch.lines, batch.events, strict=True)):
            kind = e.event
            try:
                if kind == "apply":
                    self._apply(e, number)
                elif kind == "start":
                    self.life += 1
                    own = e.clock != "machine"
                    events.skewable = own if self.life == 1 else events.skewable or own
                elif kind == "role" and e.role == "leader":
                    events.leader_terms.append(_int_field(e, "term"))
                    self.reads.elected(e.time, events.leader_terms[-1])
                elif kind == "read":
                    self.reads.read(self.reader, e.asked, e.term, e.index)
                elif kind == "stored":
                    self.safety.stored(self.stream, _int_field(e, "time"), e.first, e.last,
                                       e.terms)
                elif kind in ("recovered", "persisted"):
                    if kind == "recovered":
                        self.safety.recovered(self.stream, _int_field(e, "time"), e.last,
                                              e.terms, e.snapshot, e.snapshot_term)
                    vote = e.vote
                    if vote is not None and type(vote) is not str:
                        raise ValueError(f"field 'vote' must be a string or null, got {vote!r}")
                    when = e.time if type(e.time) is int else None
                    events.hard_states.append(HardStateEvent(
                        kind, _int_field(e, "term"), vote, _int_field(e, "commit"), self.life,
                        number, when))  # fmt: skip
                elif kind == "invariant":
                    if type(e.rule) is not str:
                        raise ValueError("field 'rule' must be a string")
                    events.invariants.append((number, batch.raw(i)))
                elif kind == "snapshot":
                    if type(e.digest) is not str or e.kind not in ("taken", "installed"):
                        raise ValueError("a snapshot needs a string 'digest' and a 'kind', "
                                         "taken or installed")
                    snap = SnapshotEvent(_int_field(e, "index"), _int_field(e, "term"),
                                         e.digest, e.kind == "installed", self.life, number)
                    events.snapshots.append(snap)
                    if snap.installed:  # it stands for an apply of its index: go on from there
                        self.previous = (snap.index, self.life)
                        if type(e.time) is int:
                            self.safety.installed(self.stream, e.time, snap.index, snap.term)
            except ValueError as exc:
                raise HistoryError(name, number, str(exc)) from None

    def _apply(self, e: Event, line: int) -> None:
        index, term, rid, crc = e.index, e.term, e.id, e.crc
        if type(index) is not int or type(term) is not int:  # the hot path: check inline
            _int_field(e, "index"), _int_field(e, "term")
        if rid is not None and type(rid) is not str:
            rid = str(rid)
        if crc is not None and type(crc) is not int:
            raise ValueError(f"field 'crc' must be an integer, got {json.dumps(crc)}")
        entry: EntryKey = (term, rid, e.repeat is True, crc)
        events, life, entries, report = self.events, self.life, self.entries, self.report
        events.applied += 1
        node = events.node
        previous = self.previous
        if previous is not None and previous[1] == life:
            if index <= previous[0]:
                report("apply-reorder", f"{node} applied index {index} after {previous[0]} in "
                       "one process life", node=node, index=index, after=previous[0], line=line)
            elif index > previous[0] + 1:
                report("apply-gap", f"{node} skipped from index {previous[0]} to {index} in one "
                       "process life", node=node, index=index, after=previous[0], line=line)
        self.previous = (index, life)
        first_life = events.firsts.life_of(index)
        if first_life is None:  # the node's first apply of this index
            events.firsts.add(index, life)
            if type(e.time) is int:
                self.safety.applied(index, e.time)
            committed = entries.get(index)
            if committed is None:
                entries.put(index, entry)
            elif committed != entry:
                events.own[index] = entry
                self.divergent.add(index)
            return
        before = events.own.get(index) or entries.get(index)
        if first_life != life and before is not None and (
                (before[0], before[1], before[3]) != (term, rid, crc)):
            report("lost-committed-entry", f"{node} applied {_entry(before)} at index {index}, "
                   f"then {_entry(entry)} after a restart", node=node, index=index,
                   before={**_side(before), "life": first_life},
                   after={**_side(entry), "life": life})


def is_noop(rid: str | None) -> bool:
    return rid is None or rid.startswith("noop")


def check_agreement(files: Iterable[tuple[str, str | os.PathLike[str]]],
                    calls: Iterable[Call] = (), *, cluster: int | None = None,
                    clock_faults: bool = False) -> dict[str, Any]:  # fmt: skip
    """The log-agreement verdict over (node, events file) pairs and the history's calls;
    HistoryError on a bad line. `cluster` and `clock_faults` as for Agreement."""
    agreement = Agreement(cluster=cluster, clock_faults=clock_faults)
    for node, path in files:
        agreement.add(node, path)
    return agreement.result(calls)


def _check_snapshots(nodes: list[NodeEvents], committed: _Entries, report: Any) -> None:
    """Every snapshot at one index names one digest, and the term of the entry applied there."""
    seen: dict[int, dict[str, SnapshotEvent]] = {}
    for events in nodes:
        for s in events.snapshots:
            seen.setdefault(s.index, {}).setdefault(events.node, s)
    for index in sorted(seen):
        by_node = seen[index]
        applied = committed.get(index)
        term = None if applied is None else applied[0]
        digests = {(s.digest, s.term) for s in by_node.values()}
        wrong_term = term is not None and any(s.term != term for s in by_node.values())
        if len(digests) > 1 or wrong_term:
            says = ", ".join(f"{n} {s.digest[:12]} (term {s.term}, "
                             f"{'installed' if s.installed else 'taken'})"
                             for n, s in by_node.items())  # fmt: skip
            if applied is not None:
                says += f"; the entry applied there is of term {term}"
            report("divergent-snapshot", f"nodes' snapshots at index {index} disagree: {says}",
                   index=index, snapshots={n: {"digest": s.digest, "term": s.term,
                                               "installed": s.installed, "line": s.line}
                                           for n, s in by_node.items()})  # fmt: skip


def _check_hard_states(events: NodeEvents, report: Any) -> None:
    """Term, vote and commit across the node's lives: what was durable must stay so."""
    node = events.node
    before: HardStateEvent | None = None  # the latest durable state known
    commit = 0  # the highest commit index the node recorded as durable
    for h in events.hard_states:
        where = {"node": node, "line": h.line, "time": h.time}
        restart = " after a restart" if h.event == "recovered" else ""
        if before is not None and h.term < before.term:
            report("term-regress", f"{node} went back from term {before.term} to {h.term}"
                   f"{restart}", term=h.term, before=before.term, **where)
        elif before is not None and h.term == before.term and before.vote is not None and (
                h.vote != before.vote):
            if h.vote is None:
                report("lost-vote", f"{node} had recorded its vote for {before.vote} in term "
                       f"{h.term}, then {'restarted' if restart else 'went on'} without it",
                       term=h.term, vote=before.vote, **where)
            else:
                report("double-vote", f"{node} voted for {before.vote} and then for {h.vote} "
                       f"in term {h.term}", term=h.term, votes=[before.vote, h.vote], **where)
        if h.event == "recovered" and h.commit < commit:
            report("commit-regress", f"{node} restarted with commit index {h.commit}, below "
                   f"the {commit} it had recorded", commit=h.commit, before=commit, **where)
        before = h  # each step back is reported once: compare with what the node has now
        if h.event == "persisted":
            commit = max(commit, h.commit)


def _broken(rule: str, e: dict[str, Any]) -> str:
    """What a node's `invariant` event says, in words."""
    if rule == "ack-before-durable":
        return (f"acknowledged entries up to {e.get('index')} to {e.get('to')} in term "
                f"{e.get('term')} with only {e.get('durable')} durable")
    if rule == "vote-before-durable":
        return (f"granted its vote to {e.get('to')} in term {e.get('term')} before recording "
                f"it (durable: term {e.get('durable_term')}, vote {e.get('durable_vote')})")
    if rule == "commit-regress":
        return f"moved its commit index back from {e.get('before')} to {e.get('commit')}"
    if rule == "overwrite-committed":
        return (f"was told by {e.get('from')} in term {e.get('term')} to overwrite entry "
                f"{e.get('index')}, which it knew committed")
    details = {k: v for k, v in e.items() if k not in ("time", "event", "rule")}
    return f"broke invariant {rule}: {json.dumps(details, sort_keys=True)}"


def _entry(e: EntryKey) -> str:
    term, rid, _, crc = e
    return f"(term {term}, id {rid}{'' if crc is None else f', crc {crc:08x}'})"


def _side(e: EntryKey) -> dict[str, Any]:
    term, rid, repeat, crc = e
    return {"term": term, "id": rid, **({"repeat": True} if repeat else {}),
            **({} if crc is None else {"crc": crc})}  # fmt: skip

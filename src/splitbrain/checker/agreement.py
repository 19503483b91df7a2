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
A torn last line (a node killed mid-write) is dropped with a warning, and so is a torn line that
the node's next life ended before its `start` event (raft/host.py); unknown events are skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from splitbrain.gcpause import paused
from splitbrain.history import Call, HistoryError

WRITES = frozenset({"put", "append", "write", "cas"})
MAX_VIOLATIONS = 200  # per kind: enough to debug, bounded for results.json
# Violations about one node's own durable state or invariants, rather than logs compared.
NODE_KINDS = frozenset({"term-regress", "double-vote", "lost-vote", "commit-regress",
                        "ack-before-durable", "vote-before-durable", "overwrite-committed"})


class Apply(NamedTuple):
    """One applied entry. A NamedTuple, not a dataclass: a run has millions of these."""

    index: int
    term: int
    id: str | None
    life: int  # which process life of the node (0 before the first "start")
    line: int
    repeat: bool = False  # a repeated request the state machine did not execute again
    crc: int | None = None  # the CRC-32 of the entry's bytes, if the node reports it


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


@dataclass(frozen=True, slots=True)
class NodeEvents:
    node: str
    applies: tuple[Apply, ...]
    leader_terms: tuple[int, ...]
    warnings: tuple[str, ...]
    hard_states: tuple[HardStateEvent, ...] = ()
    invariants: tuple[tuple[int, dict[str, Any]], ...] = ()  # (line, event) broken in the node
    snapshots: tuple[SnapshotEvent, ...] = ()


def _int_field(obj: Any, name: str) -> int:
    value = getattr(obj, name)
    if type(value) is not int:
        raise ValueError(f"field {name!r} must be an integer, got {json.dumps(value)}")
    return value


class _Event(msgspec.Struct, gc=False):
    """The fields of an event line the checker reads; the rest are skipped while decoding."""

    event: Any = None
    index: Any = None
    term: Any = None
    id: Any = None
    role: Any = None
    repeat: Any = None
    vote: Any = None
    commit: Any = None
    time: Any = None
    rule: Any = None
    digest: Any = None
    kind: Any = None
    crc: Any = None


_EVENTS = msgspec.json.Decoder(_Event)


def read_events(node: str, path: str | os.PathLike[str]) -> NodeEvents:
    """One node's events. Raises HistoryError (`file:line: problem`) on a bad line.

    A node that restarts re-applies its whole log, so these files run to millions of lines:
    msgspec decodes the whole file into records in C (only the fields read here), and only a
    file that fails that, or has blank lines, is read line by line to find the bad line (or a
    torn last line, which is dropped with a warning).
    """
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise HistoryError(name, None, f"cannot read: {exc.strerror or exc}") from None
    try:
        events = _EVENTS.decode_lines(data)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        events = None
    with paused():
        if events is not None and len(events) == data.count(b"\n") + (not data.endswith(b"\n")):
            lines = data.split(b"\n") if any(e.event == "invariant" for e in events) else []
            return _node_events(node, name, events, 1, (), lambda i: json.loads(lines[i]))
        return _read_events_slowly(node, name)


def _read_events_slowly(node: str, name: str) -> NodeEvents:
    """read_events line by line: exact line numbers, the bad line named, a torn tail dropped."""
    path = name
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise HistoryError(name, None, f"cannot read: {exc.strerror or exc}") from None
    lines = text.split("\n")
    numbers = [n for n, raw in enumerate(lines, start=1) if raw.strip()]
    warnings: list[str] = []
    torn: list[int] = []
    try:
        objs = json.loads("[" + ",".join(lines[n - 1] for n in numbers) + "]")
    except json.JSONDecodeError:
        objs = []
        for number in numbers:
            try:
                objs.append(json.loads(lines[number - 1]))
            except json.JSONDecodeError as exc:
                if number == len(lines) and not text.endswith("\n"):
                    warnings.append(
                        f"{name}:{number}: torn last line dropped (node killed mid-write)")
                    break
                if _starts_a_life(lines, numbers, number):
                    warnings.append(f"{name}:{number}: torn line dropped (node killed "
                                    f"mid-write, then restarted)")
                    torn.append(number)
                    continue
                raise HistoryError(name, number, f"bad JSON: {exc.msg}") from None
        numbers = [n for n in numbers if n not in torn][:len(objs)]
    for number, obj in zip(numbers, objs, strict=True):
        if type(obj) is not dict:
            raise HistoryError(name, number, "expected a JSON object")
    events = [_Event(**{k: obj.get(k) for k in _Event.__struct_fields__}) for obj in objs]
    return _node_events(node, name, events, numbers, tuple(warnings), objs.__getitem__)


def _starts_a_life(lines: list[str], numbers: list[int], number: int) -> bool:
    """Whether the next non-blank line after `number` is a `start` event: a node killed in the
    middle of writing a line, restarted, ended that torn line before its first event (host.py)."""
    later = numbers.index(number) + 1
    if later == len(numbers):
        return False
    try:
        following = json.loads(lines[numbers[later] - 1])
    except json.JSONDecodeError:
        return False
    return type(following) is dict and following.get("event") == "start"


def _node_events(node: str, name: str, events: list[_Event], numbers: list[int] | int,
                 warnings: tuple[str, ...], raw: Callable[[int], Any]) -> NodeEvents:
    """The applies, leaderships, durable states and broken invariants of decoded events;
    `numbers` are their lines, or the line of the first when they follow one another;
    `raw(i)` is the i-th event whole (an invariant event keeps every field)."""
    applies: list[Apply] = []
    leaders: list[int] = []
    hard_states: list[HardStateEvent] = []
    invariants: list[tuple[int, dict[str, Any]]] = []
    snapshots: list[SnapshotEvent] = []
    life = 0
    lines = range(numbers, numbers + len(events)) if isinstance(numbers, int) else numbers
    for i, (number, e) in enumerate(zip(lines, events, strict=True)):
        event = e.event
        try:
            if event == "apply":
                index, term, rid = e.index, e.term, e.id
                if type(index) is not int or type(term) is not int:  # the hot loop: check inline
                    _int_field(e, "index"), _int_field(e, "term")
                if rid is not None and type(rid) is not str:
                    rid = str(rid)
                crc = e.crc
                if crc is not None and type(crc) is not int:
                    raise ValueError(f"field 'crc' must be an integer, got {json.dumps(crc)}")
                applies.append(Apply(index, term, rid, life, number, e.repeat is True, crc))
            elif event == "start":
                life += 1
            elif event == "role" and e.role == "leader":
                leaders.append(_int_field(e, "term"))
            elif event in ("recovered", "persisted"):
                vote = e.vote
                if vote is not None and type(vote) is not str:
                    raise ValueError(f"field 'vote' must be a string or null, got {vote!r}")
                when = e.time if type(e.time) is int else None
                hard_states.append(HardStateEvent(
                    event, _int_field(e, "term"), vote, _int_field(e, "commit"), life, number,
                    when))  # fmt: skip
            elif event == "invariant":
                if type(e.rule) is not str:
                    raise ValueError("field 'rule' must be a string")
                invariants.append((number, raw(i)))
            elif event == "snapshot":
                if type(e.digest) is not str or e.kind not in ("taken", "installed"):
                    raise ValueError("a snapshot needs a string 'digest' and a 'kind', taken "
                                     "or installed")
                snapshots.append(SnapshotEvent(_int_field(e, "index"), _int_field(e, "term"),
                                               e.digest, e.kind == "installed", life, number))
        except ValueError as exc:
            raise HistoryError(name, number, str(exc)) from None
    return NodeEvents(node, tuple(applies), tuple(leaders), warnings, tuple(hard_states),
                      tuple(invariants), tuple(snapshots))


def is_noop(rid: str | None) -> bool:
    return rid is None or rid.startswith("noop")


def check_agreement(nodes: Iterable[NodeEvents], calls: Iterable[Call] = ()) -> dict[str, Any]:
    """The log-agreement verdict over the nodes' events and the history's calls."""
    nodes = list(nodes)
    violations: dict[str, list[dict[str, Any]]] = {}

    def report(kind: str, message: str, **data: Any) -> None:
        found = violations.setdefault(kind, [])
        if len(found) < MAX_VIOLATIONS:
            found.append({"kind": kind, "message": message, **data})

    # Per node: order within each life, and agreement across its lives.
    first_seen: dict[str, dict[int, Apply]] = {}
    for events in nodes:
        mine: dict[int, Apply] = {}
        previous: Apply | None = None
        # an installed snapshot at S stands for an apply of S: the life goes on from S + 1
        installs = [(s.line, s) for s in events.snapshots if s.installed]
        installs.reverse()
        for a in events.applies:
            while installs and installs[-1][0] < a.line:
                s = installs.pop()[1]
                previous = Apply(s.index, s.term, None, s.life, s.line)
            if previous is not None and previous.life == a.life:
                if a.index <= previous.index:
                    report("apply-reorder", f"{events.node} applied index {a.index} after "
                           f"{previous.index} in one process life", node=events.node,
                           index=a.index, after=previous.index, line=a.line)
                elif a.index > previous.index + 1:
                    report("apply-gap", f"{events.node} skipped from index {previous.index} "
                           f"to {a.index} in one process life", node=events.node,
                           index=a.index, after=previous.index, line=a.line)
            before = mine.get(a.index)
            if before is None:
                mine[a.index] = a
            elif (before.term, before.id, before.crc) != (a.term, a.id, a.crc) and (
                    before.life != a.life):
                report("lost-committed-entry", f"{events.node} applied {_entry(before)} at index "
                       f"{a.index}, then {_entry(a)} after a restart", node=events.node,
                       index=a.index, before=_json(before), after=_json(a))
            previous = a
        first_seen[events.node] = mine

    # Across nodes: one entry per index.
    indexes = sorted({i for mine in first_seen.values() for i in mine})
    committed: dict[int, Apply] = {}
    for index in indexes:
        entries = {node: mine[index] for node, mine in first_seen.items() if index in mine}
        distinct = {(a.term, a.id, a.repeat, a.crc) for a in entries.values()}
        if len(distinct) > 1:
            side_by_side = {node: _side(a) for node, a in entries.items()}
            report("divergent-entry", f"nodes applied different entries at index {index}: "
                   + ", ".join(f"{n} {_entry(a)}" for n, a in entries.items()),
                   index=index, entries=side_by_side)
        committed[index] = next(iter(entries.values()))

    _check_snapshots(nodes, committed, report)

    leaders: dict[int, list[str]] = {}
    for events in nodes:
        for term in events.leader_terms:
            if events.node not in leaders.setdefault(term, []):
                leaders[term].append(events.node)
    for term in sorted(leaders):
        if len(leaders[term]) > 1:
            report("two-leaders", f"{' and '.join(leaders[term])} were both leader in term {term}",
                   term=term, nodes=leaders[term])

    # The committed sequence against what clients were told.
    where: dict[str, list[int]] = {}
    executed: dict[str, list[int]] = {}
    for index, a in committed.items():
        if not is_noop(a.id):
            where.setdefault(a.id, []).append(index)  # type: ignore[arg-type]
            if not a.repeat:
                executed.setdefault(a.id, []).append(index)  # type: ignore[arg-type]
    for rid, at in executed.items():
        if len(at) > 1:
            report("duplicate-apply", f"request {rid} was executed {len(at)} times "
                   f"(indexes {', '.join(map(str, at))})", request=rid, indexes=at)
    if nodes:
        for call in calls:
            rid = call.request
            if call.type == "ok" and call.f in WRITES and rid is not None and rid not in where:
                report("lost-write", f"acknowledged {call.f} {json.dumps(call.value)} "
                       f"(request {rid}) is not in the committed log", request=rid,
                       op=call.to_json())

    for events in nodes:
        _check_hard_states(events, report)
        for line, event in events.invariants:
            rule = event["rule"]
            at = {"index": event["index"]} if rule == "overwrite-committed" and type(
                event.get("index")) is int else {}  # the report shows the entries around it
            report(rule, f"{events.node} {_broken(rule, event)}", node=events.node, line=line,
                   time=event.get("time"), event=event, **at)

    found = [v for kind in sorted(violations) for v in violations[kind]]
    result: dict[str, Any] = {
        "valid": not found,
        "violations": found,
        "leaders": {str(t): leaders[t] for t in sorted(leaders)},
        "nodes": [n.node for n in nodes],
        "committed": len(committed),
        "warnings": [w for n in nodes for w in n.warnings],
    }
    if found:
        counts = ", ".join(f"{len(v)} {k}" for k, v in sorted(violations.items()))
        result["cause"] = f"{found[0]['message']} ({counts})"
    if not nodes:
        result["note"] = "no nodes/*/events.jsonl: nothing to compare"
    return result


def _check_snapshots(nodes: list[NodeEvents], committed: dict[int, Apply], report: Any) -> None:
    """Every snapshot at one index names one digest, and the term of the entry applied there."""
    seen: dict[int, dict[str, SnapshotEvent]] = {}
    for events in nodes:
        for s in events.snapshots:
            seen.setdefault(s.index, {}).setdefault(events.node, s)
    for index in sorted(seen):
        by_node = seen[index]
        applied = committed.get(index)
        digests = {(s.digest, s.term) for s in by_node.values()}
        wrong_term = applied is not None and any(s.term != applied.term for s in by_node.values())
        if len(digests) > 1 or wrong_term:
            says = ", ".join(f"{n} {s.digest[:12]} (term {s.term}, "
                             f"{'installed' if s.installed else 'taken'})"
                             for n, s in by_node.items())  # fmt: skip
            if applied is not None:
                says += f"; the entry applied there is of term {applied.term}"
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


def _entry(a: Apply) -> str:
    return f"(term {a.term}, id {a.id}{'' if a.crc is None else f', crc {a.crc:08x}'})"


def _side(a: Apply) -> dict[str, Any]:
    return {"term": a.term, "id": a.id, **({"repeat": True} if a.repeat else {}),
            **({} if a.crc is None else {"crc": a.crc})}  # fmt: skip


def _json(a: Apply) -> dict[str, Any]:
    return {**_side(a), "life": a.life}

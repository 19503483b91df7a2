"""When and how a stored run was found invalid: its first anomaly, on the run's clock.

Shared by the benches that measure how fast splitbrain catches a bug (bench/unsafe.py,
bench/mutants.py). `detect(run)` reads results.json, history.jsonl and the nodes' events.jsonl
and names the checker and violation kind that caught the run, and the time to detection: the
seconds since the run started (history.jsonl `time`) of the first operation or node event that
makes it invalid:
- linearizability: the completion of the op the checker could not linearize;
- `lost-write`: the completion of the acknowledged write the log lost;
- `divergent-entry`, `lost-committed-entry`: the first apply at that index that contradicts
  the first one applied there;
- `two-leaders`: the second node to become leader of that term;
- `duplicate-apply`: the first apply of the request at a second index;
- `divergent-snapshot`: the first snapshot at that index that contradicts the first one (or,
  when all agree on a term the log does not, the first one);
- `apply-gap`, `apply-reorder`, and any kind naming a `node` and a `line`: that event;
- any other kind carrying a node event's `time` (durable state, invariants a node reported):
  that time. A violation without a kind (the simulator's invariants) is of its checker's.

Node events carry wall-clock times: they are placed on the run's clock by the first applies of
acknowledged client writes, each of which happened between the write's invoke and completion.
A violation that cannot be placed still names the checker and kind, with no time. Nothing here
raises for a missing or damaged file: a run the bench cannot read is reported without timing.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from splitbrain.history import Call, HistoryError, pair_calls, read_jsonl
from splitbrain.store import RunDir

LINEARIZABLE = "linearizable"

# node -> [(line number in events.jsonl, event)]
NodeEvents = dict[str, list[tuple[int, dict[str, Any]]]]


@dataclass(frozen=True, slots=True)
class Detection:
    valid: bool | str | None  # results.json "valid"; None when there is no readable results.json
    cause: str | None  # results.json "cause"
    checker: str | None  # the checker whose violation came first (None if valid)
    kind: str | None  # "linearizability" or the violation kind (e.g. "divergent-entry")
    detect_s: float | None  # run-clock seconds of the first anomaly; None if it cannot be placed

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class _Sign:
    checker: str
    kind: str
    run_ns: float | None = None  # on the run's clock (history times)
    wall_ns: int | None = None  # on the nodes' wall clock (events times)


def node_events(run: RunDir) -> NodeEvents:
    """Every node's events with their line numbers (1-based, as the agreement checker counts)."""
    found: NodeEvents = {}
    for node in run.node_names():
        evs: list[tuple[int, dict[str, Any]]] = []
        try:
            with run.node_events(node).open(encoding="utf-8", errors="replace") as f:
                for number, line in enumerate(f, start=1):
                    try:
                        event = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if isinstance(event, dict) and isinstance(event.get("time"), int):
                        evs.append((number, event))
        except OSError:
            pass
        found[node] = evs
    return found


def clock_offset(events: NodeEvents, calls: Iterable[Call]) -> float | None:
    """Wall-clock ns minus run-clock ns. The first apply of an acknowledged write (on the node
    that answered, before it answered; restarted nodes apply it again later) happened between
    the write's invoke and its completion."""
    ok = {c.request: c for c in calls if c.type == "ok" and c.request and c.end is not None}
    first: dict[str, int] = {}
    for evs in events.values():
        for _, e in evs:
            rid = e.get("id")
            if e.get("event") == "apply" and rid in ok:
                first[rid] = min(first.get(rid, e["time"]), e["time"])
    if not first:
        return None
    low = max(w - ok[rid].end for rid, w in first.items())  # type: ignore[operator]
    high = min(w - ok[rid].start for rid, w in first.items())
    if low <= high:
        return (low + high) / 2
    return statistics.median(w - (ok[rid].start + ok[rid].end) / 2  # type: ignore[operator]
                             for rid, w in first.items())


def _applies(events: NodeEvents) -> Iterable[dict[str, Any]]:
    return (e for evs in events.values() for _, e in evs if e.get("event") == "apply")


def _violation_sign(checker: str, v: Mapping[str, Any], events: NodeEvents,
                    by_request: Mapping[str, Call]) -> _Sign:
    kind = str(v.get("kind") or checker)  # the simulator's invariants: one kind each
    sign = _Sign(checker, kind)
    if kind == "lost-write":
        call = by_request.get(v.get("request"))  # type: ignore[arg-type]
        return _Sign(sign.checker, kind, run_ns=call.end if call else None)
    if kind in ("divergent-entry", "lost-committed-entry"):
        applies = sorted((e["time"], e.get("term"), e.get("id")) for e in _applies(events)
                         if e.get("index") == v.get("index"))
        first = applies[0][1:] if applies else None
        clash = [t for t, *entry in applies if tuple(entry) != first]
        return _Sign(sign.checker, kind, wall_ns=clash[0] if clash else None)
    if kind == "divergent-snapshot":
        snaps = sorted((e["time"], e.get("digest"), e.get("term")) for evs in events.values()
                       for _, e in evs if e.get("event") == "snapshot"
                       and e.get("index") == v.get("index"))  # fmt: skip
        clash = [t for t, *snap in snaps if tuple(snap) != tuple(snaps[0][1:])]
        return _Sign(sign.checker, kind, wall_ns=(clash or [s[0] for s in snaps] or [None])[0])
    if kind == "two-leaders":
        times = sorted(e["time"] for n in v.get("nodes", ()) for _, e in events.get(n, ())
                       if e.get("event") == "role" and e.get("role") == "leader"
                       and e.get("term") == v.get("term"))
        return _Sign(sign.checker, kind, wall_ns=times[1] if len(times) > 1 else None)
    if kind == "duplicate-apply":
        indexes = sorted(v.get("indexes") or ())
        times = [e["time"] for e in _applies(events)
                 if e.get("id") == v.get("request") and e.get("index") in indexes[1:]]
        return _Sign(sign.checker, kind, wall_ns=min(times) if times else None)
    line = v.get("line")
    for number, e in events.get(str(v.get("node")), ()):
        if number == line:
            return _Sign(sign.checker, kind, wall_ns=e["time"])
    if isinstance(v.get("time"), int):  # a node's own event: durable state, invariants
        return _Sign(sign.checker, kind, wall_ns=v["time"])
    return sign


def _signs(results: Mapping[str, Any], events: NodeEvents, calls: list[Call]) -> list[_Sign]:
    """Every first sign of invalidity the results name, in the checkers' order."""
    found: list[_Sign] = []
    by_request = {c.request: c for c in calls if c.request}
    for name, result in (results.get("checkers") or {}).items():
        if not isinstance(result, dict) or result.get("valid") is not False:
            continue
        if name == LINEARIZABLE:
            op = (result.get("failure") or {}).get("op") or {}
            found.append(_Sign(name, "linearizability", run_ns=op.get("end") or op.get("start")))
        elif result.get("refusals") or result.get("exits"):  # checker/restarts.py
            signs = [(r, "refused-start") for r in result.get("refusals") or []]
            signs += [(r, "node-exit") for r in result.get("exits") or []]
            first, kind = min(signs, key=lambda s: s[0].get("index", 0))
            found.append(_Sign(name, kind, run_ns=first.get("time")))
        elif result.get("violations"):
            for v in result["violations"]:
                found.append(_violation_sign(name, v, events, by_request))
        else:
            found.append(_Sign(name, name))
    return found


def detect(run: RunDir) -> Detection:
    """How and when `run` was found invalid (all None but `valid` for a valid run)."""
    try:
        results = json.loads(run.results.read_text())
    except (OSError, ValueError):
        return Detection(None, "no readable results.json", None, None, None)
    if not isinstance(results, dict):
        return Detection(None, "results.json is not an object", None, None, None)
    try:
        calls = pair_calls(read_jsonl(run.history).ops)
    except (OSError, HistoryError):
        calls = []
    events = node_events(run)
    found = _signs(results, events, calls)
    offset = clock_offset(events, calls)
    best: tuple[float, _Sign] | None = None
    for sign in found:
        run_ns = sign.run_ns
        if run_ns is None and sign.wall_ns is not None and offset is not None:
            run_ns = sign.wall_ns - offset
        if run_ns is not None and (best is None or run_ns < best[0]):
            best = (run_ns, sign)
    first = best[1] if best else (found[0] if found else None)
    return Detection(
        valid=results.get("valid"),
        cause=results.get("cause"),
        checker=first.checker if first else None,
        kind=first.kind if first else None,
        detect_s=round(max(best[0], 0) / 1e9, 3) if best else None,
    )

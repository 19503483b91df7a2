"""Fault windows: the intervals during which a fault was in force, read from nemesis events.

A window opens at start-X and closes at the matching stop-X (start-partition..stop-partition,
start-net-fault..stop-net-fault, and any future start-*/stop-* pair), kill..start,
power-loss..start, crash..start (a node that killed itself at an armed crash point),
exit..start (a node that exited by itself: no fault, a failure the restarts checker judges)
and pause..resume per node.
A window never closed lasts until the end of the history. Labels name what was really done
(the grudge, the nodes), taken from the events' values. Pure.

Faults overlap, so a closing event ends exactly the nodes it lists (an empty list ends none; only
an event without a `nodes` list ends every node's window of its kind), and a node killed or
crashed while paused ends its pause there: a dead process is not a paused one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from splitbrain.history import Op

# opening f -> (kind, closing f); kill and pause are per node
_PER_NODE = {"kill": ("kill", "start"), "crash": ("crash", "start"), "pause": ("pause", "resume"),
             "power-loss": ("power-loss", "start"), "exit": ("exit", "start")}
_KIND_NAMES = {"net-fault": "net"}


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """One fault in force from `start` to `end` (ns since the run started)."""

    kind: str  # partition, kill, pause, net, or the X of a start-X/stop-X pair
    start: int
    end: int
    nodes: tuple[str, ...]  # the nodes it affected
    label: str  # what a person reads on the band: "partition n1 | n2 n3", "kill n2"
    closed: bool  # False when the history ended with it still in force

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "start": self.start, "end": self.end,
                "nodes": list(self.nodes), "label": self.label, "closed": self.closed}


def _nodes_of(value: Any) -> tuple[str, ...]:
    if isinstance(value, Mapping) and isinstance(value.get("nodes"), list):
        return tuple(str(n) for n in value["nodes"])
    if isinstance(value, list) and all(isinstance(n, str) for n in value):
        return tuple(value)
    if isinstance(value, str):
        return (value,)
    return ()


def grudge_label(grudge: Mapping[str, Any]) -> str:
    """"n1 | n2 n3" when the grudge splits nodes into groups that fully drop each other,
    else who drops whom: "n1 drops n3; n2 drops n4"."""
    drops = {str(a): {str(b) for b in (bs or [])} for a, bs in grudge.items()}
    nodes = sorted(set(drops) | {b for bs in drops.values() for b in bs}, key=lambda n: (len(n), n))
    cut = {(a, b) for a, bs in drops.items() for b in bs}
    groups: list[list[str]] = []
    for n in nodes:
        for g in groups:
            if all((n, m) not in cut and (m, n) not in cut for m in g):
                g.append(n)
                break
        else:
            groups.append([n])
    # The groups explain the grudge only if every pair across groups is cut both ways.
    if len(groups) > 1 and all(
        (a, b) in cut for g in groups for h in groups if g is not h for a in g for b in h
    ):
        return " | ".join(" ".join(g) for g in groups)
    return "; ".join(f"{a} drops {' '.join(sorted(bs))}" for a, bs in sorted(drops.items()) if bs)


def _label(kind: str, value: Any, nodes: tuple[str, ...]) -> str:
    how = ""
    if isinstance(value, Mapping):
        detail = value.get("kind", value.get("point"))  # the variant: "bridge", "after-vote"
        how = f" ({detail})" if isinstance(detail, str) else ""
        if value.get("stall") is True:  # a cut that stalls its links (schedule.STALL_SHARE)
            how = f" ({detail}, stalled)" if how else " (stalled)"
        if isinstance(value.get("grudge"), Mapping):
            return f"{kind}{how} {grudge_label(value['grudge'])}".strip()
    if nodes:
        return f"{kind}{how} {' '.join(nodes)}"
    if value is None or how:
        return f"{kind}{how}"
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return f"{kind} {text[:80]}{'…' if len(text) > 80 else ''}"


def _affected(value: Any) -> tuple[str, ...]:
    if isinstance(value, Mapping) and isinstance(value.get("grudge"), Mapping):
        g = value["grudge"]
        return tuple(sorted({str(a) for a, bs in g.items() if bs}, key=lambda n: (len(n), n)))
    if isinstance(value, Mapping) and isinstance(value.get("links"), list):
        return tuple(sorted({str(n) for link in value["links"] if isinstance(link, list)
                             for n in link}, key=lambda n: (len(n), n)))
    return _nodes_of(value)


def fault_windows(ops: Iterable[Op], end: int) -> list[FaultWindow]:
    """Every fault window of the nemesis events in ops, ordered by start; `end` closes open ones."""
    windows: list[FaultWindow] = []
    open_pairs: dict[str, Op] = {}  # kind -> the start-X event
    open_nodes: dict[tuple[str, str], Op] = {}  # (kind, node) -> the kill/pause event
    closers: dict[str, set[str]] = {}
    for kind, close in _PER_NODE.values():
        closers.setdefault(close, set()).add(kind)
    for op in ops:
        if not op.is_nemesis:
            continue
        f = op.f
        if f in _PER_NODE:
            kind = _PER_NODE[f][0]
            nodes = _nodes_of(op.value)
            if kind != "pause":
                ended = [k for k in open_nodes if k[0] == "pause" and k[1] in nodes]
                windows += _node_windows("pause", [(open_nodes.pop(k), k[1]) for k in ended],
                                         op.time, closed=True)
            for node in nodes:
                open_nodes.setdefault((kind, node), op)
        elif f in closers:
            listed = isinstance(op.value, Mapping) and isinstance(op.value.get("nodes"), list)
            named = _nodes_of(op.value)
            for kind in sorted(closers[f]):
                ended = [k for k in open_nodes
                         if k[0] == kind and (k[1] in named if listed or named else True)]
                windows += _node_windows(kind, [(open_nodes.pop(k), k[1]) for k in ended],
                                         op.time, closed=True)
        elif f.startswith("start-"):
            kind = f.removeprefix("start-")
            open_pairs.setdefault(kind, op)
        elif f.startswith("stop-"):
            kind = f.removeprefix("stop-")
            if kind in open_pairs:
                start = open_pairs.pop(kind)
                windows.append(_pair_window(kind, start, op.time, True))
    for kind, start in open_pairs.items():
        windows.append(_pair_window(kind, start, max(end, start.time), False))
    for kind in sorted({k for k, _ in open_nodes}):
        still = [(start, node) for (k, node), start in open_nodes.items() if k == kind]
        windows += _node_windows(kind, still, end, closed=False)
    windows.sort(key=lambda w: (w.start, w.end, w.label))
    return windows


def _node_windows(kind: str, started: list[tuple[Op, str]], end: int, *, closed: bool
                  ) -> list[FaultWindow]:
    """Windows of nodes whose fault ends together: one window per event that began them, so
    killing three nodes at once is one band "kill n1 n2 n3", not three."""
    by_start: dict[int, tuple[Op, list[str]]] = {}
    for op, node in started:
        by_start.setdefault(op.index, (op, []))[1].append(node)
    out = []
    for op, nodes in by_start.values():
        names = tuple(sorted(nodes, key=lambda n: (len(n), n)))
        out.append(FaultWindow(kind, op.time, max(end, op.time), names,
                               f"{kind} {' '.join(names)}", closed))
    return out


def _pair_window(kind: str, start: Op, end: int, closed: bool) -> FaultWindow:
    name = _KIND_NAMES.get(kind, kind)
    nodes = _affected(start.value)
    return FaultWindow(name, start.time, end, nodes, _label(name, start.value, nodes), closed)

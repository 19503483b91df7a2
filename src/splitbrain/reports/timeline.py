"""The timeline's data: every call as compact columns the page draws on a canvas.

Columns instead of one object per call keep a 100,000-call report small and fast to parse:
times are integer microseconds since the run started, start times are delta-encoded (calls
come in invocation order), and repeated texts (values, keys, nodes, errors) are indexes into
one string table. A lane is a client process; when the run's concurrency is known, the
processes one worker went through (p, p + concurrency, … after each info) share its lane,
because they never overlap in time. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from splitbrain.history import Call

TYPES = ("ok", "fail", "info")
MAX_TEXT = 300  # characters of a value kept for the details panel


def text_of(value: Any) -> str:
    """A value as the JSON a person reads, cut to MAX_TEXT characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


class _Strings:
    """Interns texts; -1 stands for 'none'."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.table: list[str] = []

    def __call__(self, text: str | None) -> int:
        if text is None:
            return -1
        i = self.index.get(text)
        if i is None:
            i = self.index[text] = len(self.table)
            self.table.append(text)
        return i


@dataclass(frozen=True, slots=True)
class Lanes:
    """How processes map to lanes."""

    of: dict[int | str, int]  # process -> lane
    labels: list[str]  # lane -> "p3 p13 p23"


def lanes(calls: Sequence[Call], concurrency: int | None) -> Lanes:
    procs = sorted({c.process for c in calls}, key=lambda p: (isinstance(p, str), str(p).zfill(9)))
    by_worker = bool(concurrency) and all(isinstance(p, int) for p in procs)

    def worker(p: int | str) -> int | str:
        return p % concurrency if by_worker else p  # type: ignore[operator]

    order: list[int | str] = []
    members: dict[int | str, list[str]] = {}
    for p in procs:
        w = worker(p)
        if w not in members:
            order.append(w)
            members[w] = []
        members[w].append(f"p{p}")
    index = {w: i for i, w in enumerate(sorted(order, key=lambda w: str(w).zfill(9)))}
    labels = [""] * len(index)
    for w, i in index.items():
        names = members[w]
        short = f"{names[0]} … {names[-1]} ({len(names)})"
        labels[i] = " ".join(names) if len(names) <= 3 else short
    return Lanes({p: index[worker(p)] for p in procs}, labels)


def columns(calls: Sequence[Call], concurrency: int | None) -> dict[str, Any]:
    """The timeline payload: lanes, function names, a string table and one column per field."""
    lane_map = lanes(calls, concurrency)
    strings = _Strings()
    fs: dict[str, int] = {}
    s, d, lane, typ, f, k, v, o, e, n, p, i = ([] for _ in range(12))
    last_start = 0
    last_index = 0
    for c in calls:
        start = c.start // 1000
        s.append(start - last_start)
        last_start = start
        d.append(-1 if c.end is None else c.end // 1000 - start)
        lane.append(lane_map.of[c.process])
        typ.append(TYPES.index(c.type))
        f.append(fs.setdefault(c.f, len(fs)))
        k.append(strings(c.key))
        v.append(strings(None if c.value is None else text_of(c.value)))
        o.append(strings(None if c.type != "ok" else text_of(c.output)))
        e.append(strings(None if c.error is None else text_of(c.error)))
        n.append(strings(c.node))
        p.append(c.process if isinstance(c.process, int) else -1)
        i.append(c.invoke_index - last_index)
        last_index = c.invoke_index
    return {
        "lanes": lane_map.labels,
        "fs": list(fs),
        "types": list(TYPES),
        "strings": strings.table,
        # s: start (delta µs), d: duration µs (-1: never completed), l: lane, t: type, f: function,
        # k: key, v: input, o: output of ok, e: error, n: node, p: process, i: invoke index (delta)
        "ops": {"s": s, "d": d, "l": lane, "t": typ, "f": f, "k": k, "v": v, "o": o, "e": e,
                "n": n, "p": p, "i": i},
    }

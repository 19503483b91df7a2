"""Stats: what happened, per function and per fault window. It describes; it never judges.

- counts of ok / fail / info per f;
- latency quantiles (p50, p90, p99, max, in ms) per f over calls that got a completion line;
- availability per fault window: for every nemesis window (start-X .. stop-X, kill .. start,
  pause .. resume; a window still open at the end closes with the history) the fraction of
  calls invoked inside it that succeeded (`Call.succeeded`: ok, or a failed compare),
  and the same outside every window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from splitbrain.history import Call, Op

# opening fault -> the event that ends it (start-X / stop-X pairs are matched by name)
CLOSES = {"kill": "start", "pause": "resume"}
QUANTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))


def _closer(f: str) -> str | None:
    if f in CLOSES:
        return CLOSES[f]
    if f.startswith("start-"):
        return "stop-" + f[len("start-"):]
    return None


def fault_windows(nemesis: Sequence[Op], end: int) -> list[dict[str, Any]]:
    """Windows [start, end) of every fault, in the order they opened."""
    windows: list[dict[str, Any]] = []
    open_: dict[str, list[dict[str, Any]]] = {}  # closing f -> windows waiting for it
    for op in nemesis:
        waiting = open_.get(op.f)
        if waiting:
            window = waiting.pop(0)
            window["end"] = op.time
            window["closed_by"] = op.f
            continue
        closer = _closer(op.f)
        if closer is not None:
            window = {"fault": op.f, "value": op.value, "start": op.time, "end": None}
            windows.append(window)
            open_.setdefault(closer, []).append(window)
    for window in windows:
        if window["end"] is None:
            window["end"] = end
            window["closed_by"] = None
    return windows


def _quantile(sorted_values: Sequence[int], q: float) -> float:
    """Nearest-rank quantile, ns -> ms."""
    index = max(0, math.ceil(q * len(sorted_values)) - 1)
    return round(sorted_values[index] / 1e6, 3)


def _availability(calls: Sequence[Call]) -> dict[str, Any]:
    ok = sum(1 for c in calls if c.succeeded)
    return {"calls": len(calls), "ok": ok,
            "availability": round(ok / len(calls), 4) if calls else None}


def stats(calls: Sequence[Call], nemesis: Sequence[Op] = ()) -> dict[str, Any]:
    """The stats checker's result (always valid: it has nothing to judge)."""
    by_f: dict[str, dict[str, Any]] = {}
    latencies: dict[str, list[int]] = {}
    for c in calls:
        entry = by_f.setdefault(c.f, {"ok": 0, "fail": 0, "info": 0})
        entry[c.type] += 1
        if c.latency is not None:
            latencies.setdefault(c.f, []).append(c.latency)
    for f, values in latencies.items():
        values.sort()
        by_f[f]["latency_ms"] = {name: _quantile(values, q) for name, q in QUANTILES}
        by_f[f]["latency_ms"]["max"] = round(values[-1] / 1e6, 3)
    end = max([c.end or c.start for c in calls] + [op.time for op in nemesis], default=0) + 1
    windows = fault_windows(nemesis, end)
    inside: set[int] = set()
    for window in windows:
        invoked = [c for c in calls if window["start"] <= c.start < window["end"]]
        inside.update(c.invoke_index for c in invoked)
        window.update(_availability(invoked))
    outside = [c for c in calls if c.invoke_index not in inside]
    return {
        "valid": True,
        "calls": len(calls),
        "by_f": {f: by_f[f] for f in sorted(by_f)},
        "availability": _availability(calls)["availability"],
        "outside_faults": _availability(outside),
        "fault_windows": windows,
    }

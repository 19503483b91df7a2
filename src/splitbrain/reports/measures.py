"""Measures the report tabulates: availability per fault window and latency quantiles.

Computed from the history itself so the report needs nothing but the run directory. A call
belongs to a window when it was invoked while the fault was in force; availability is the
fraction of those calls that succeeded (`Call.succeeded`: ok, or a failed compare, which is a
real answer). Latency counts ok calls only: a fail or info latency measures a timeout, not the
system. Pure.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from splitbrain.history import Call
from splitbrain.reports.faults import FaultWindow

QUANTILES = (0.5, 0.9, 0.99, 0.999)


@dataclass(frozen=True, slots=True)
class Availability:
    """How many calls invoked during one window (or outside all of them) succeeded."""

    label: str
    kind: str  # a fault kind, "none" outside every window, "all" for the whole run
    start: int  # ns
    end: int  # ns
    calls: int
    ok: int

    @property
    def fraction(self) -> float | None:
        return self.ok / self.calls if self.calls else None


def availability(calls: Sequence[Call], windows: Sequence[FaultWindow], end: int
                 ) -> list[Availability]:
    """One row per window, then one for the time without faults, then the whole run."""
    starts = [c.start for c in calls]  # invocation order is time order
    ok = [0]
    for c in calls:
        ok.append(ok[-1] + c.succeeded)

    def count(a: int, b: int) -> tuple[int, int]:
        lo, hi = bisect.bisect_left(starts, a), bisect.bisect_left(starts, b)
        return hi - lo, ok[hi] - ok[lo]

    rows = []
    for w in windows:
        n, good = count(w.start, w.end)
        rows.append(Availability(w.label, w.kind, w.start, w.end, n, good))
    faulty = [False] * len(calls)
    for w in windows:
        for j in range(bisect.bisect_left(starts, w.start), bisect.bisect_left(starts, w.end)):
            faulty[j] = True
    quiet = [c for c, bad in zip(calls, faulty, strict=True) if not bad]
    rows.append(Availability("no fault in force", "none", 0, end, len(quiet),
                             sum(c.succeeded for c in quiet)))
    rows.append(Availability("whole run", "all", 0, end, len(calls), ok[-1]))
    return rows


@dataclass(frozen=True, slots=True)
class Latency:
    """Latency quantiles of one function's ok calls, in ms."""

    f: str
    count: int
    quantiles: tuple[float, ...]  # at QUANTILES
    max: float


def latency_quantiles(calls: Sequence[Call]) -> list[Latency]:
    by_f: dict[str, list[int]] = {}
    for c in calls:
        if c.type == "ok" and c.end is not None:
            by_f.setdefault(c.f, []).append(c.end - c.start)
    rows = []
    for f, lat in sorted(by_f.items()):
        lat.sort()
        qs = tuple(lat[min(len(lat) - 1, int(q * len(lat)))] / 1e6 for q in QUANTILES)
        rows.append(Latency(f, len(lat), qs, lat[-1] / 1e6))
    return rows

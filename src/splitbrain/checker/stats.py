"""Stats: what happened, per function and per fault window. It describes; it never judges.

- counts of ok / fail / info per f;
- latency quantiles of ok calls per f (a fail or info latency measures a timeout, not the
  system), nearest rank, in ms;
- availability per fault window (`history.faults`): of the calls invoked while the fault was in
  force, the fraction that succeeded (`Call.succeeded`: ok, or a failed compare, which is a real
  answer); the same for the time with no fault in force and for the whole run.

The report shows exactly these numbers, so results.json and report.html never disagree.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from splitbrain.history import Call, Op
from splitbrain.history.faults import FaultWindow, fault_windows

QUANTILES = (0.5, 0.9, 0.99, 0.999)


@dataclass(frozen=True, slots=True)
class Availability:
    """How many calls invoked during one window (or outside all of them) succeeded."""

    label: str
    kind: str  # a fault kind, "none" outside every window, "all" for the whole run
    start: int  # ns
    end: int  # ns
    calls: int
    ok: int  # calls that succeeded

    @property
    def fraction(self) -> float | None:
        return self.ok / self.calls if self.calls else None

    def to_json(self) -> dict[str, Any]:
        fraction = self.fraction
        return {"label": self.label, "kind": self.kind, "start": self.start, "end": self.end,
                "calls": self.calls, "ok": self.ok,
                "availability": None if fraction is None else round(fraction, 4)}


@dataclass(frozen=True, slots=True)
class Latency:
    """Latency quantiles of one function's ok calls, in ms."""

    f: str
    count: int
    quantiles: tuple[float, ...]  # at QUANTILES
    max: float


def availability(calls: Sequence[Call], windows: Sequence[FaultWindow], end: int
                 ) -> list[Availability]:
    """One row per window, then one for the time without faults, then the whole run."""
    starts = [c.start for c in calls]  # invocation order is time order
    ok = [0]
    for c in calls:
        ok.append(ok[-1] + c.succeeded)

    def span(a: int, b: int) -> tuple[int, int]:
        return bisect.bisect_left(starts, a), bisect.bisect_left(starts, b)

    rows = []
    faulty = [False] * len(calls)
    for w in windows:
        lo, hi = span(w.start, w.end)
        rows.append(Availability(w.label, w.kind, w.start, w.end, hi - lo, ok[hi] - ok[lo]))
        faulty[lo:hi] = [True] * (hi - lo)
    quiet = [c for c, bad in zip(calls, faulty, strict=True) if not bad]
    rows.append(Availability("no fault in force", "none", 0, end, len(quiet),
                             sum(c.succeeded for c in quiet)))
    rows.append(Availability("whole run", "all", 0, end, len(calls), ok[-1]))
    return rows


def latency_quantiles(calls: Sequence[Call]) -> list[Latency]:
    by_f: dict[str, list[int]] = {}
    for c in calls:
        if c.type == "ok" and c.end is not None:
            by_f.setdefault(c.f, []).append(c.end - c.start)
    rows = []
    for f, lat in sorted(by_f.items()):
        lat.sort()
        qs = tuple(lat[max(0, math.ceil(q * len(lat)) - 1)] / 1e6 for q in QUANTILES)
        rows.append(Latency(f, len(lat), qs, lat[-1] / 1e6))
    return rows


def history_end(calls: Sequence[Call], nemesis: Sequence[Op]) -> int:
    """The last moment the history speaks of, ns."""
    return max([c.end or c.start for c in calls] + [op.time for op in nemesis], default=0) + 1


def stats(calls: Sequence[Call], nemesis: Sequence[Op] = ()) -> dict[str, Any]:
    """The stats checker's result (always valid: it has nothing to judge)."""
    by_f: dict[str, dict[str, Any]] = {}
    for c in calls:
        by_f.setdefault(c.f, {"ok": 0, "fail": 0, "info": 0})[c.type] += 1
    for row in latency_quantiles(calls):
        by_f[row.f]["latency_ms"] = {
            **{f"p{q * 100:g}": round(v, 3) for q, v in zip(QUANTILES, row.quantiles,
                                                            strict=True)},
            "max": round(row.max, 3),
        }
    end = history_end(calls, nemesis)
    windows = fault_windows(nemesis, end)
    rows = availability(calls, windows, end)
    return {
        "valid": True,
        "calls": len(calls),
        "by_f": {f: by_f[f] for f in sorted(by_f)},
        "availability": rows[-1].to_json()["availability"],
        "outside_faults": rows[-2].to_json(),
        "fault_windows": [{**w.to_json(), **a.to_json()}
                          for w, a in zip(windows, rows, strict=False)],
    }

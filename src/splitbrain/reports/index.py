"""The runs index: runs/index.html, one row per run with its verdict and a link to its report.

`write_index(base)` is called after every run (and by `splitbrain report` and `serve`). It
reads only what is cheap: config.json, results.json, and of history.jsonl a byte count of
invocations and the time of its last line, so an index over hundreds of long runs stays fast.
A run with unreadable files is still listed, with what could be read. Self-contained like the
report; rows are rendered server-side with autoescaping, links built by `relative_href` (a run
named `javascript:alert(9)` is a directory, not a script), the trend drawn as SVG (no style
attributes: the page's CSP allows only its own hashed styles and script).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from splitbrain.reports.data import started_at
from splitbrain.reports.explain import verdict_name
from splitbrain.reports.report import environment, write_text
from splitbrain.store import RunDir, find_runs

VERDICTS = ("valid", "invalid", "unknown", "not checked")
_INVOKE = re.compile(rb'"type"\s*:\s*"invoke"')
_TIME = re.compile(rb'"time"\s*:\s*(\d+)')


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One row of the index."""

    href: str  # the run directory relative to the index
    name: str
    started: str  # "2026-11-27 06:00:00" UTC, from config.json or the directory name
    workload: str
    faults: str
    verdict: str  # one of VERDICTS
    cause: str
    calls: int
    duration_s: float
    has_report: bool


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _history_shape(path: Path) -> tuple[int, float]:
    """(client calls, seconds) of a history without parsing it: invokes are only clients'."""
    try:
        data = path.read_bytes()
    except OSError:
        return 0, 0.0
    calls = len(_INVOKE.findall(data))
    complete = data[: data.rfind(b"\n")]  # a last line without a newline may be torn
    for line in reversed(complete.rsplit(b"\n", 2)):
        m = _TIME.search(line)
        if m:
            return calls, int(m.group(1)) / 1e9
    return calls, 0.0


def summarize(run: RunDir, base: Path) -> RunSummary:
    config = _json(run.config)
    results = _json(run.results)
    calls, duration = _history_shape(run.history)
    nemesis = config.get("nemesis")
    faults = ", ".join(map(str, nemesis)) if isinstance(nemesis, list) else str(nemesis or "—")
    verdict = verdict_name(results.get("valid")) if "valid" in results else "not checked"
    when = started_at(config, run)
    return RunSummary(
        href=os.path.relpath(run.path, base).replace(os.sep, "/"),
        name=str(config.get("name") or run.path.parent.name),
        started=when.strftime("%Y-%m-%d %H:%M:%S") if when else "—",
        workload=str(config.get("workload") or "—"),
        faults=faults or "none",
        verdict=verdict,
        cause=str(results.get("cause") or ""),
        calls=calls,
        duration_s=duration,
        has_report=run.report.is_file(),
    )


def trend(rows: list[RunSummary]) -> list[tuple[str, dict[str, int]]]:
    """Verdict counts per day, oldest first."""
    days: dict[str, Counter[str]] = {}
    for r in sorted(rows, key=lambda r: r.started):
        days.setdefault(r.started[:10], Counter())[r.verdict] += 1
    return [(day, {v: c[v] for v in VERDICTS}) for day, c in days.items()]


def bars(counts: dict[str, int], most: int, height: float = 76.0
         ) -> list[tuple[str, float, float]]:
    """(verdict, y, height) of one day's stacked bar in an 80-unit-high SVG, first verdict at
    the bottom; `most` runs make a full bar."""
    out, top = [], 80.0
    for verdict in VERDICTS:
        if counts.get(verdict):
            h = round(counts[verdict] * height / most, 1)
            top -= h
            out.append((verdict, round(top, 1), h))
    return out


def write_index(base: str | os.PathLike[str]) -> Path:
    """Write base/index.html listing every run under base, newest first; returns its path."""
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    rows = [summarize(run, base) for run in find_runs(base) if run.path != base]
    rows.sort(key=lambda r: (r.started, r.href), reverse=True)
    days = trend(rows)
    most = max((sum(c.values()) for _, c in days), default=1)
    html = environment().get_template("index.html.j2").render(
        rows=rows, days=[(day, c, bars(c, most)) for day, c in days], verdicts=VERDICTS,
        counts=Counter(r.verdict for r in rows), base=str(base.resolve()),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))
    path = base / "index.html"
    write_text(path, html)
    return path

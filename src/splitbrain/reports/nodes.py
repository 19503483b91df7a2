"""What the report shows of the nodes: log excerpts around the failure and their applied entries.

node.log is free-form text; a line is placed in time by a leading ISO-8601 timestamp (with a
zone, or without one in local time, as Python's logging writes "2026-11-27 07:32:10,909") or a
leading Unix time in seconds. Lines without a timestamp
stay with the line before. When no line can be placed the excerpt is the end of the log, and
says so. Excerpts are capped so a chatty node cannot bloat the report. events.jsonl is streamed
as the log-agreement checker reads it (checker/eventfile.py), except that lines that are not JSON
objects are skipped rather than refused: the report shows what it can.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from splitbrain.checker.eventfile import Event, EventFile
from splitbrain.history import HistoryError
from splitbrain.store import RunDir

MAX_LINES = 200  # per node
# 2026-11-27T07:32:10.909Z, or Python logging's "2026-11-27 07:32:10,909" (local time)
_ISO = re.compile(r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?)(Z|[+-]\d\d:?\d\d)?")
_EPOCH = re.compile(r"^\[?(\d{9,10}\.\d+)")


@dataclass(frozen=True, slots=True)
class Excerpt:
    """Lines of one node's log shown in the report, with where they came from."""

    node: str
    path: str  # relative to the run directory, for the link to the raw file
    note: str  # which part of the log this is
    lines: tuple[str, ...] = field(default=())


def line_time(line: str) -> float | None:
    """Unix seconds of a log line's leading timestamp, or None."""
    head = line[:48]
    m = _ISO.search(head)
    if m is not None and m.start() < 8:
        text = m.group(1).replace(" ", "T").replace(",", ".")
        if "." in text:  # fromisoformat takes at most 6 fraction digits
            whole, frac = text.split(".")
            text = f"{whole}.{frac[:6].ljust(6, '0')}"
        zone = m.group(2)
        if zone is not None:
            text += "+00:00" if zone == "Z" else zone
        try:  # without a zone it is the local time of the machine that wrote it
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            return None
    m = _EPOCH.match(head)
    return float(m.group(1)) if m else None


def excerpt(run: RunDir, node: str, window: tuple[float, float] | None) -> Excerpt | None:
    """The node's log lines within window (Unix seconds), else the end of the log."""
    path = run.node_log(node)
    rel = str(path.relative_to(run.path))
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    lines = text.splitlines()
    if window is not None:
        lo, hi = window
        chosen: list[str] = []
        placed = False
        inside = False
        for line in lines:
            t = line_time(line)
            if t is not None:
                placed = True
                inside = lo <= t <= hi
            if inside:
                chosen.append(line)
        if placed:
            start = datetime.fromtimestamp(lo, UTC).strftime("%H:%M:%S.%f")[:-3]
            end = datetime.fromtimestamp(hi, UTC).strftime("%H:%M:%S.%f")[:-3]
            note = f"lines from {start} to {end} UTC"
            if len(chosen) > MAX_LINES:
                note += f", first {MAX_LINES} of {len(chosen)}"
            if not chosen:
                note += ": none"
            return Excerpt(node, rel, note, tuple(chosen[:MAX_LINES]))
    tail = lines[-MAX_LINES // 4:]
    return Excerpt(node, rel, f"last {len(tail)} of {len(lines)} lines", tuple(tail))


def events(run: RunDir, node: str) -> Iterator[Event]:
    """The node's structured events (the fields the checkers read), streamed as the log-agreement
    checker reads them; lines that are not JSON objects are skipped."""
    try:
        for batch in EventFile(run.node_events(node), lenient=True).batches():
            yield from batch.events
    except HistoryError:  # unreadable
        return


def applied_around(run: RunDir, nodes: list[str], index: int, radius: int = 3
                   ) -> tuple[list[int], dict[str, dict[int, str]], dict[str, int]]:
    """Entries each node applied at index±radius, as 'term T · id' text, side by side.

    Returns (indexes, node -> index -> text, node -> wall-clock ns it first applied `index`).
    A node that applied one index differently in two process lives shows both.
    """
    indexes = list(range(max(1, index - radius), index + radius + 1))
    table: dict[str, dict[int, str]] = {}
    when: dict[str, int] = {}
    for node in nodes:
        seen: dict[int, list[str]] = {}
        for e in events(run, node):
            i = e.index
            if e.event != "apply" or not isinstance(i, int) or i not in indexes:
                continue
            text = f"term {e.term} · {e.id}"
            if text not in seen.setdefault(i, []):
                seen[i].append(text)
            if i == index and isinstance(e.time, int):
                when.setdefault(node, e.time)
        table[node] = {i: " / ".join(v) for i, v in seen.items()}
    return indexes, table, when


def leaders_from_events(run: RunDir, nodes: list[str]) -> dict[str, list[str]]:
    """term -> nodes that became leader in it, from role events (when results lack them)."""
    leaders: dict[str, list[str]] = {}
    for node in nodes:
        for e in events(run, node):
            if e.event == "role" and e.role == "leader":
                names = leaders.setdefault(str(e.term), [])
                if node not in names:
                    names.append(node)
    return leaders

"""The picture of a linearizability failure, laid out here and drawn as inline SVG.

It shows the failing key's operations around the failure on a real time axis, one row per
process: the last steps of the longest linearizable prefix with their linearization points
joined in order and the model state after each written beside it, the operation that could
not be linearized in red with the reason, and other operations on the key that overlap it in
grey. Every label is visible text, so it reads without hovering. A linearization point must lie
inside its operation and after the previous point; the earliest such point is chosen, which
exists because the prefix is a valid linearization. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from splitbrain.reports.explain import describe_call
from splitbrain.reports.timeline import text_of

SHOWN_STEPS = 10  # prefix steps drawn; the table below the picture lists more
MAX_LISTED = 1000  # steps listed in the report; results.json has the whole prefix
MAX_OTHERS = 12  # overlapping calls drawn in grey
WIDTH = 1100
LEFT = 70  # room for row labels
ROW = 58
TOP = 34
CHAR_W = 6.6  # average width of a 12px label character, to cut labels that would overlap


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    w: float
    role: str  # step, failed, other
    label: str
    title: str


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float
    step: int
    state: str


def _ops(failure: Mapping[str, Any]) -> tuple[list[dict], dict, list[str]]:
    prefix = [s for s in failure.get("prefix") or [] if isinstance(s, Mapping)]
    ops = [s.get("op") if isinstance(s.get("op"), Mapping) else {} for s in prefix]
    states = [str(s.get("state", "")) for s in prefix]
    bad = failure.get("op") if isinstance(failure.get("op"), Mapping) else {}
    return ops, bad, states  # type: ignore[return-value]


def _short(op: Mapping[str, Any]) -> str:
    """'write 3', 'read → 4', 'cas [1, 2] ✗' (a cas that failed its compare)."""
    text = str(op.get("f", "?"))
    if op.get("value") is not None:
        text += f" {text_of(op['value'])}"
    output = op.get("output")
    if op.get("type") == "ok" and output is not None and output != op.get("value"):
        text += f" → {text_of(output)}"
    elif op.get("type") == "fail":
        text += " ✗"
    return text


def _points(ops: list[dict], t_end: int) -> list[float]:
    """The earliest linearization points: each inside its call and not before the previous."""
    pts: list[float] = []
    prev = float("-inf")
    for op in ops:
        start = op.get("start") or 0
        end = op.get("end") if op.get("end") is not None else t_end
        p = max(float(start), prev)
        pts.append(min(p, float(end)))
        prev = pts[-1]
    return pts


def _fit_labels(bars: list[Bar]) -> list[Bar]:
    """Cut each label to the room before the next bar in its row (the table has full text)."""
    out = []
    for b in bars:
        after = [o.x for o in bars if o.y == b.y and o.x > b.x]
        room = (min(after) - b.x if after else WIDTH - b.x) - 6
        chars = max(4, int(room / CHAR_W))
        label = b.label if len(b.label) <= chars else b.label[: chars - 1] + "…"
        out.append(Bar(b.x, b.y, b.w, b.role, label, b.title))
    return out


def _others(failure: Mapping[str, Any], key_calls: list[dict], ops: list[dict], bad: dict,
            lo: int, hi: int) -> list[dict]:
    """Calls on the key that overlap the picture and are neither steps nor the failing call:
    the checker's `concurrent` list when it gives one, else found in the history."""
    given = failure.get("concurrent")
    if isinstance(given, list):
        candidates = [c for c in given if isinstance(c, Mapping)]
    else:
        taken = {op.get("invoke_index") for op in ops} | {bad.get("invoke_index")}
        candidates = [c for c in key_calls if c.get("invoke_index") not in taken]
    return [c for c in candidates
            if (c.get("start") or 0) <= hi and (c.get("end") or hi) >= lo][:MAX_OTHERS]


def layout(failure: Mapping[str, Any], key_calls: list[dict]) -> dict[str, Any]:
    """Everything the template needs to draw the failure: SVG geometry and the step table.

    `key_calls` are the failing key's calls (Call.to_json() dicts) from the history, used to
    show which other operations overlapped the one that failed.
    """
    ops, bad, states = _ops(failure)
    if not bad and ops:  # no call to blame (the search gave up elsewhere): end at the prefix
        bad_start = bad_end = max(op.get("end") or op.get("start") or 0 for op in ops)
    else:
        bad_start = bad.get("start") or 0
        bad_end = bad.get("end") if bad.get("end") is not None else bad_start
    pts = _points(ops, bad_end)
    first = max(0, len(ops) - SHOWN_STEPS)
    shown = list(range(first, len(ops)))
    lo = min([bad_start, *(ops[i].get("start") or 0 for i in shown)])
    hi = max([bad_end, *(ops[i].get("end") or bad_end for i in shown)])
    others = _others(failure, key_calls, ops, bad, lo, hi)
    span = max(hi - lo, 1)
    lo -= span // 20
    hi += span // 4  # room right of the failing call for its label
    span = hi - lo

    def x(t: float) -> float:
        return LEFT + (t - lo) / span * (WIDTH - LEFT - 20)

    procs: list[Any] = []
    for op in [*(ops[i] for i in shown), *([bad] if bad else []), *others]:
        if op.get("process") not in procs:
            procs.append(op.get("process"))
    row = {p: TOP + i * ROW for i, p in enumerate(procs)}

    def bar(op: Mapping[str, Any], role: str, label: str) -> Bar:
        start = op.get("start") or 0
        end = op.get("end") if op.get("end") is not None else hi
        x0 = x(start)
        return Bar(x0, row[op.get("process")], max(3.0, x(end) - x0), role, label,
                   describe_call(op))

    bars = [bar(c, "other", _short(c)) for c in others]
    bars += [bar(ops[i], "step", f"#{i + 1} {_short(ops[i])}") for i in shown]
    if bad:
        bars.append(bar(bad, "failed", f"✗ {_short(bad)}"))
    bars = _fit_labels(bars)
    points = [Point(x(pts[i]), row[ops[i].get("process")] + 14, i + 1, states[i]) for i in shown]
    ticks = [(x(lo + span * k / 5), f"{(lo + span * k / 5) / 1e9:.4f} s") for k in range(6)]
    listed = range(max(0, len(ops) - MAX_LISTED), len(ops))
    steps = [{"n": i + 1, "process": ops[i].get("process"), "what": describe_call(ops[i]),
              "start": ops[i].get("start"), "end": ops[i].get("end"), "state": states[i]}
             for i in listed]
    # The reason, under the failing call; anchored at its right end when it is far right.
    failed = next((b for b in bars if b.role == "failed"), None)
    reason = str(failure.get("reason", ""))
    note = None
    if failed is not None:
        right = failed.x > WIDTH * 0.6
        room = (failed.x + failed.w - LEFT if right else WIDTH - failed.x) / CHAR_W
        text = reason if len(reason) <= room else reason[: max(8, int(room) - 1)] + "…"
        note = {"x": failed.x + failed.w if right else failed.x, "y": failed.y + 44,
                "anchor": "end" if right else "start", "text": text}
    return {
        "note": note,
        "key": failure.get("key"),
        "reason": reason,
        "model": failure.get("model"),
        "op": describe_call(bad) if bad else "no single operation",
        "op_start": bad_start,
        "op_end": bad.get("end"),
        "invoke_index": bad.get("invoke_index"),
        "width": WIDTH,
        "height": TOP + len(procs) * ROW + 10,
        "rows": [(f"p{p}", row[p]) for p in procs],
        "bars": bars,
        "points": points,
        "path": " ".join(f"{'M' if j == 0 else 'L'}{p.x:.1f},{p.y:.1f}"
                         for j, p in enumerate(points)),
        "ticks": ticks,
        "steps": steps,  # the last MAX_LISTED steps
        "total_steps": len(ops),
        "first_shown": first + 1,
        "window": (lo, hi),
    }

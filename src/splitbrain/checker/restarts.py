"""Restarts: a node that a fault stopped must start again on its own files.

kill -9, a power loss (which forgets only what was never synced), a crash point and a pause are
what processes and machines go through; a node that afterwards refuses to start — exits by
itself while starting, on the files its earlier lives left — has lost what it needs to recover:
a WAL or snapshot recovery bug, or a durability bug that recovery then catches. Kept out of the
count, because a fault made the refusal right:
- starts that belong to a `corrupt` fault: a refusal on a damaged file is recorded as
  `corrupt-refused`, the damage repaired and the node started again;
- starts of a node while its disk is full (between `start-disk-full` and `stop-disk-full`).
A start that timed out or was killed while starting is not a refusal and is not judged here.

The nemesis records, in each `start` event, the nodes that refused (`refused`) with their
messages (`errors`), so this reads the history only, for any target.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from splitbrain.history import Op

MAX_SHOWN = 20  # refusals listed in results.json; the count covers all of them


def check_restarts(nemesis: Iterable[Op]) -> dict[str, Any]:
    """{"valid", "checked": starts judged, "refusals": [{node, time, index, message}] ...}."""
    full: set[str] = set()
    refusals: list[dict[str, Any]] = []
    checked = 0
    for op in nemesis:
        value = op.value if isinstance(op.value, dict) else {}
        nodes = _names(value.get("nodes"))
        if op.f == "start-disk-full":
            full.update(nodes)
        elif op.f == "stop-disk-full":
            full.difference_update(nodes)
        if op.f != "start" or value.get("fault") == "corrupt":
            continue
        refused = [n for n in _names(value.get("refused")) if n not in full]
        checked += len(nodes) + len(refused)
        errors = value.get("errors") if isinstance(value.get("errors"), dict) else {}
        refusals += [{"node": n, "time": op.time, "index": op.index,
                      "message": str(errors.get(n, ""))} for n in refused]  # fmt: skip
    result: dict[str, Any] = {"valid": not refusals, "checked": checked,
                              "refusals": refusals[:MAX_SHOWN], "count": len(refusals)}
    if refusals:
        first = refusals[0]
        result["cause"] = (f"{first['node']} refused to start after a fault that should not stop "
                           f"it ({len(refusals)} refusal(s)): {first['message']}")
    return result


def _names(value: Any) -> list[str]:
    return [n for n in value if isinstance(n, str)] if isinstance(value, list) else []

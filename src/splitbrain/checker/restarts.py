"""Restarts: a node must keep running, and start again on its own files after a fault.

kill -9, a power loss (which forgets only what was never synced), a crash point and a pause are
what processes and machines go through; a node that afterwards refuses to start — exits by
itself while starting, on the files its earlier lives left — has lost what it needs to recover:
a WAL or snapshot recovery bug, or a durability bug that recovery then catches. A node that
exits by itself while running, with no fault to stop it (`exit` events: an exception, an
assertion, a self-check that gave up), is a bug as plainly; the nemesis records it with its
status and output and starts it again. Kept out of the count, because a fault made it right:
- starts that belong to a `corrupt` fault: a refusal on a damaged file is recorded as
  `corrupt-refused`, the damage repaired and the node started again;
- starts and exits of a node while its disk is full (between `start-disk-full` and
  `stop-disk-full`); the nemesis records no exit of a node armed with a crash point, nor of
  one that exits in the moment after its disk was emptied or, paused then, after its resume
  (nemesis.DISK_FULL_GRACE), and a start that began on a full disk is recorded with no
  refusal, whenever its record lands;
- exits of a node that a `corrupt` fault damaged and that started on the damage (no
  `corrupt-refused`: nothing was repaired), for the rest of the run: damage found while
  running may end a node, as it should.
A start that timed out or was killed while starting is not a refusal and is not judged here.

The nemesis records, in each `start` event, the nodes that refused (`refused`) with their
messages (`errors`), so this reads the history only, for any target.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from splitbrain.history import Op

MAX_SHOWN = 20  # refusals (and exits) listed in results.json; the counts cover all of them


def check_restarts(nemesis: Iterable[Op]) -> dict[str, Any]:
    """{"valid", "checked": starts judged, "refusals": [{node, time, index, message}], "count",
    "exits": [{node, time, index, message}], "exit_count"} (+ "cause" when invalid)."""
    full: set[str] = set()
    damaged: set[str] = set()  # started on files a corrupt fault damaged and nothing repaired
    refusals: list[dict[str, Any]] = []
    exits: list[dict[str, Any]] = []
    checked = 0
    for op in nemesis:
        value = op.value if isinstance(op.value, dict) else {}
        nodes = _names(value.get("nodes"))
        if op.f == "start-disk-full":
            full.update(nodes)
        elif op.f == "stop-disk-full":
            full.difference_update(nodes)
        elif op.f == "corrupt" and isinstance(value.get("node"), str):
            damaged.add(value["node"])
        elif op.f == "corrupt-refused" and isinstance(value.get("node"), str):
            damaged.discard(value["node"])  # repaired before it starts again
        elif op.f == "exit":
            exits += [_found(op, n, value.get("status")) for n in nodes
                      if n not in full and n not in damaged]  # fmt: skip
        if op.f != "start" or value.get("fault") == "corrupt":
            continue
        refused = [n for n in _names(value.get("refused")) if n not in full]
        checked += len(nodes) + len(refused)
        errors = value.get("errors") if isinstance(value.get("errors"), dict) else {}
        refusals += [_found(op, n, errors.get(n)) for n in refused]
    result: dict[str, Any] = {"valid": not refusals and not exits, "checked": checked,
                              "refusals": refusals[:MAX_SHOWN], "count": len(refusals),
                              "exits": exits[:MAX_SHOWN], "exit_count": len(exits)}
    if exits and (not refusals or exits[0]["index"] < refusals[0]["index"]):
        first = exits[0]
        result["cause"] = (f"{first['node']} exited by itself while running, with no fault to "
                           f"stop it ({len(exits)} exit(s)): {first['message']}")
    elif refusals:
        first = refusals[0]
        result["cause"] = (f"{first['node']} refused to start after a fault that should not stop "
                           f"it ({len(refusals)} refusal(s)): {first['message']}")
    return result


def _found(op: Op, node: str, message: Any) -> dict[str, Any]:
    return {"node": node, "time": op.time, "index": op.index,
            "message": "" if message is None else str(message)}  # fmt: skip


def _names(value: Any) -> list[str]:
    return [n for n in value if isinstance(n, str)] if isinstance(value, list) else []

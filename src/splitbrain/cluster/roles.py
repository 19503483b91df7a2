"""Following the nodes' role events as they are written: who just became leader, of which term.

    watch = LeaderWatch({"n1": run.node_events("n1"), ...})   # starts at the files' current end
    for node, term in watch.poll(): ...                         # leaderships seen since last poll

The white-box contract (DESIGN.md, "Node events"): every node appends one flushed JSON line per
event to its events.jsonl, `{"event": "role", "role": "leader", "term": 7}` on each role change.
Reading appended bytes is cheaper and much faster than asking every node for its status, which
is what lets a nemesis react to an election within milliseconds. A line is read only once it is
complete; a torn or non-JSON line (a node killed mid-write) is skipped. Files are only appended
to (a restarted node appends to the same file), so an offset per file is all the state needed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path


class LeaderWatch:
    def __init__(self, paths: Mapping[str, Path]) -> None:
        self._paths = dict(paths)
        self._offsets = {node: _size(path) for node, path in self._paths.items()}

    def poll(self) -> list[tuple[str, int]]:
        """(node, term) of every `role: leader` event appended since the last poll, in the
        order of each file (files are read in node order)."""
        found: list[tuple[str, int]] = []
        for node, path in self._paths.items():
            offset = self._offsets[node]
            if _size(path) <= offset:
                continue
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
            end = data.rfind(b"\n") + 1  # only complete lines
            self._offsets[node] = offset + end
            for line in data[:end].splitlines():
                if b'"leader"' not in line:  # most lines are applies: skip them unparsed
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(event, dict):
                    continue
                term = event.get("term")
                if event.get("event") == "role" and event.get("role") == "leader" and (
                    isinstance(term, int)
                ):
                    found.append((node, term))
        return found


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0

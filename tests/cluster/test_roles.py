"""LeaderWatch reads only what nodes append after it starts, and only complete role events."""

from __future__ import annotations

import json
from pathlib import Path

from splitbrain.cluster.roles import LeaderWatch


def append(path: Path, *lines: str | dict[str, object]) -> None:
    with path.open("a") as f:
        for line in lines:
            f.write(line if isinstance(line, str) else json.dumps(line) + "\n")


def test_reports_leaderships_appended_since_it_started(tmp_path: Path) -> None:
    n1, n2 = tmp_path / "n1.jsonl", tmp_path / "n2.jsonl"
    append(n1, {"event": "role", "role": "leader", "term": 1})  # before the watch: not reported
    watch = LeaderWatch({"n1": n1, "n2": n2})  # n2's file does not exist yet
    assert watch.poll() == []
    append(n1, {"event": "apply", "index": 1, "term": 1, "id": "noop"},
           {"event": "role", "role": "follower", "term": 2})  # fmt: skip
    append(n2, {"event": "role", "role": "candidate", "term": 2},
           {"event": "role", "role": "leader", "term": 2})  # fmt: skip
    assert watch.poll() == [("n2", 2)]
    assert watch.poll() == []


def test_a_line_is_read_once_complete_and_garbage_is_skipped(tmp_path: Path) -> None:
    n1 = tmp_path / "n1.jsonl"
    n1.touch()
    watch = LeaderWatch({"n1": n1})
    append(n1, '{"event": "role", "role": "leader", "te')  # being written
    assert watch.poll() == []
    append(n1, 'rm": 3}\n', '{"torn\n', '["leader"]\n', '{"event": "role", "role": "leader"}\n')
    assert watch.poll() == [("n1", 3)]

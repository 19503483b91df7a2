"""events.jsonl lines follow DESIGN.md and become visible only when flushed."""

import json

import pytest

from splitbrain.raft.events import EventLog, term_runs
from splitbrain.raft.messages import Entry


def test_events_are_json_lines_written_on_flush(tmp_path):
    path = tmp_path / "node" / "events.jsonl"
    log = EventLog(path)
    log.emit("start", node="n1")
    log.emit("role", role="leader", term=7)
    log.apply(42, 7, 'c3:17"')  # the fast path escapes like json.dumps
    log.apply(43, 7, "c3:17", repeat=True)
    log.apply(44, 7, "c3:18", crc=3735928559)
    assert path.read_text() == ""
    log.flush()
    events = [json.loads(line) for line in path.read_text().splitlines()]
    log.close()
    assert all(isinstance(e.pop("time"), int) for e in events)
    assert events == [
        {"event": "start", "node": "n1"},
        {"event": "role", "role": "leader", "term": 7},
        {"event": "apply", "index": 42, "term": 7, "id": 'c3:17"'},
        {"event": "apply", "index": 43, "term": 7, "id": "c3:17", "repeat": True},
        {"event": "apply", "index": 44, "term": 7, "id": "c3:18", "crc": 3735928559},
    ]


@pytest.mark.parametrize("before, after", [
    # A life killed mid-line: the next one ends that line before its first event.
    ('{"time": 1, "event": "start"}\n{"time": 2, "event": "app',
     '{"time": 1, "event": "start"}\n{"time": 2, "event": "app\n{"time":3,"event":"start"}\n'),
    # A whole file gets no blank line.
    ('{"time": 1, "event": "start"}\n',
     '{"time": 1, "event": "start"}\n{"time":3,"event":"start"}\n'),
])
def test_a_new_life_starts_on_a_line_of_its_own(tmp_path, before, after):
    path = tmp_path / "events.jsonl"
    path.write_text(before)
    log = EventLog(path, clock=lambda: 3)
    log.emit("start")
    log.close()
    assert path.read_text() == after


def test_term_runs_name_where_each_term_begins():
    entries = [Entry(2, 5), Entry(2, 6), Entry(3, 7), Entry(5, 8), Entry(5, 9)]
    assert term_runs(entries) == [[5, 2], [7, 3], [8, 5]]
    assert term_runs([]) == []

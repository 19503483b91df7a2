"""events.jsonl lines follow DESIGN.md and become visible only when flushed."""

import json

from splitbrain.raft.events import EventLog


def test_events_are_json_lines_written_on_flush(tmp_path):
    path = tmp_path / "node" / "events.jsonl"
    log = EventLog(path)
    log.emit("start", node="n1")
    log.emit("role", role="leader", term=7)
    log.apply(42, 7, 'c3:17"')  # the fast path escapes like json.dumps
    log.apply(43, 7, "c3:17", repeat=True)
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
    ]


def test_a_new_life_ends_the_line_a_killed_one_tore(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"time": 1, "event": "start"}\n{"time": 2, "event": "app')
    log = EventLog(path, clock=lambda: 3)
    log.emit("start")
    log.close()
    assert path.read_text().split("\n")[1:] == ['{"time": 2, "event": "app',
                                                 '{"time":3,"event":"start"}', ""]


def test_a_whole_file_gets_no_blank_line(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"time": 1, "event": "start"}\n')
    log = EventLog(path, clock=lambda: 3)
    log.emit("start")
    log.close()
    assert path.read_text() == '{"time": 1, "event": "start"}\n{"time":3,"event":"start"}\n'

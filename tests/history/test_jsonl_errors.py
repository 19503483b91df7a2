"""The history.jsonl reader names the file, the line and the problem, on one line."""

from __future__ import annotations

import json

import pytest

from splitbrain.history import HistoryError, read_jsonl


def _line(index, process, type_, f="write", value=1, **extra):
    return json.dumps({"index": index, "time": index, "process": process, "type": type_,
                       "f": f, "value": value, **extra})


def _write(tmp_path, lines, tail="\n"):
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(lines) + tail)
    return path


@pytest.mark.parametrize(("lines", "line", "problem"), [
    ([_line(0, 0, "invoke"), "{not json"], 2, "bad JSON"),
    ([_line(0, 0, "invoke"), _line(1, 0, "done")], 2, 'unknown type "done"'),
    ([_line(0, 0, "ok")], 1, "ok for process 0 with no open invoke"),
    ([_line(0, 0, "invoke"), _line(1, 0, "info"), _line(2, 0, "invoke")], 3,
     "process 0 invokes again after its info on line 2"),
    ([json.dumps({"index": 0, "time": 0, "process": 0, "f": "read"})], 1,
     "missing field 'type'"),
])
def test_bad_line_is_named(tmp_path, lines, line, problem):
    path = _write(tmp_path, lines)
    with pytest.raises(HistoryError) as err:
        read_jsonl(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: ")
    assert problem in message
    assert "\n" not in message


def test_torn_last_line_is_dropped_with_a_warning(tmp_path):
    path = _write(tmp_path, [_line(0, 0, "invoke"), '{"index": 1, "ti'], tail="")
    history = read_jsonl(path)
    assert len(history) == 1
    assert "torn last line" in history.warnings[0]


def test_request_ids_are_kept(tmp_path):
    path = _write(tmp_path, [_line(0, 0, "invoke", request="c0:1"),
                             _line(1, 0, "ok", request="c0:1")])
    assert read_jsonl(path).ops[1].extra == {"request": "c0:1"}

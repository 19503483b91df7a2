"""The streaming reader (msgspec + the compiled pairer) gives what read_jsonl + pair_calls give:
the same calls, the same warnings, and for bad input the same `file:line: problem`."""

from __future__ import annotations

import io
import json
import random

import pytest

from splitbrain.history import HistoryError, Op, pair_calls, read_jsonl
from splitbrain.history.stream import read_calls
from splitbrain.testing.registers import generate


def _slow(path):
    history = read_jsonl(path)
    return pair_calls(history.ops), history.nemesis_ops, history.warnings


def _same(path):
    """Both readers agree: on the calls, nemesis ops and warnings, or on the error."""
    try:
        expected = _slow(path)
    except HistoryError as exc:
        with pytest.raises(HistoryError) as err:
            read_calls(path)
        assert str(err.value) == str(exc)
        return None
    got = read_calls(path)
    assert got.calls == expected[0]
    assert [c.request for c in got.calls] == [c.request for c in expected[0]]
    assert [op.to_json() for op in got.nemesis] == [  # fields the checkers read
        Op(*(getattr(op, f) for f in Op.__dataclass_fields__ if f != "extra")).to_json()
        for op in expected[1]]
    assert got.warnings == expected[2]
    return got


def _history(calls=400, corrupt=0, seed=1):
    out = io.StringIO()
    generate(out, calls=calls, keys=5, processes=6, info=0.1, seed=seed, corrupt=corrupt)
    return out.getvalue()


def test_a_generated_history(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text(_history())
    assert len(_same(path).calls) == 400


def test_nemesis_requests_nodes_open_invokes_and_blank_lines(tmp_path):
    lines = [
        {"index": 0, "time": 0, "process": "nemesis", "type": "info", "f": "start-partition",
         "value": {"grudge": {"n1": ["n2"]}}, "extra": 1},
        {"index": 1, "time": 5, "process": 0, "type": "invoke", "f": "write", "key": "a",
         "value": 1, "node": "n1", "request": "c0:1"},
        {"index": 2, "time": 6, "process": 1, "type": "invoke", "f": "read", "key": "a",
         "value": None, "request": 7},
        {"index": 3, "time": 9, "process": 0, "type": "ok", "f": "write", "key": "a",
         "value": 1, "node": ""},
        {"index": 4, "time": 9, "process": 2, "type": "invoke", "f": "cas", "value": [1, 2]},
        {"index": 5, "time": 10, "process": 2, "type": "info", "f": "cas", "value": [1, 2],
         "error": "timeout", "node": "n3"},
    ]
    path = tmp_path / "history.jsonl"
    path.write_text("\n\n".join(json.dumps(line) for line in lines) + "\n   \n")
    got = _same(path)
    assert [c.type for c in got.calls] == ["ok", "info", "info"]
    assert got.calls[1].error == "no completion" and got.calls[1].request == "7"


def test_torn_last_line(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text(_history(50) + '{"index": 100, "ti')
    assert "torn last line" in _same(path).warnings[0]


def test_a_last_line_without_newline_is_kept(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text(_history(50).rstrip("\n"))
    assert len(_same(path).calls) == 50


@pytest.mark.parametrize("bad", [
    '{"index": 1, "time": 0, "process": 0, "type": "invoke", "f": "read"}',  # index
    '{"index": 0, "time": -1, "process": 0, "type": "invoke", "f": "read"}',
    '{"index": 0, "time": 0, "process": "x", "type": "invoke", "f": "read"}',
    '{"index": 0, "time": 0, "process": true, "type": "invoke", "f": "read"}',
    '{"index": 0, "time": 0, "process": 0, "type": "done", "f": "read"}',
    '{"index": 0, "time": 0, "process": 0, "type": "invoke", "f": ""}',
    '{"index": 0, "time": 0, "process": 0, "type": "invoke"}',
    '{"index": 0, "time": 0, "process": 0, "type": "ok", "f": "read"}',
    '{"index": 0, "time": 0, "process": 0, "type": "invoke", "f": "read", "key": 3}',
    '{"index": 0, "time": 0, "process": 0, "type": "invoke", "f": "read", "value": NaN}',
    '{"index": 0, "time": 0, "process": 0, "type": "invoke", "f": "read", "value": '
    + "[" * 101 + "]" * 101 + "}",
    '[1, 2]',
    '{"index": 0, "time": 0.5, "process": 0, "type": "invoke", "f": "read"}',
])
def test_bad_lines_name_the_same_line_and_problem(tmp_path, bad):
    path = tmp_path / "history.jsonl"
    path.write_text(bad + "\n" + '{"index": 1, "time": 1, "process": 9, "type": "invoke", '
                    '"f": "read"}\n')
    with pytest.raises(HistoryError):
        read_jsonl(path)
    _same(path)


def test_the_discipline_is_checked_across_blocks(tmp_path, monkeypatch):
    from splitbrain.history import stream

    monkeypatch.setattr(stream, "BLOCK", 64)
    text = _history(100).splitlines()
    text.insert(60, text[40].replace('"index":40', '"index":60'))  # a second invoke, renumbered
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(text) + "\n")
    _same(path)
    path.write_text(_history(100))
    assert len(_same(path).calls) == 100


def test_random_damage_is_read_alike(tmp_path):
    """Bytes deleted, lines swapped or dropped: both readers say the same thing."""
    rng = random.Random(5)
    base = _history(60)
    path = tmp_path / "history.jsonl"
    for _ in range(200):
        lines = base.splitlines(keepends=True)
        action = rng.randrange(3)
        i = rng.randrange(len(lines))
        if action == 0:
            line = lines[i]
            j = rng.randrange(len(line))
            lines[i] = line[:j] + line[j + 1:]
        elif action == 1:
            k = rng.randrange(len(lines))
            lines[i], lines[k] = lines[k], lines[i]
        else:
            del lines[i]
        path.write_text("".join(lines))
        _same(path)


def test_without_the_compiled_core_read_jsonl_does_the_job(tmp_path, monkeypatch):
    from splitbrain.history import stream

    path = tmp_path / "history.jsonl"
    path.write_text(_history(80))
    expected = read_calls(path)
    monkeypatch.setattr(stream, "_core", None)
    got = read_calls(path)
    assert got.calls == expected.calls and got.warnings == expected.warnings

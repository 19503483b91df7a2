"""Log agreement over synthetic nodes/*/events.jsonl files, one violation at a time."""

from __future__ import annotations

import json

import pytest

from splitbrain.checker.agreement import check_agreement, read_events
from splitbrain.history import Call, HistoryError


def _start():
    return {"time": 0, "event": "start"}


def _leader(term):
    return {"time": 0, "event": "role", "role": "leader", "term": term}


def _apply(index, term, rid):
    return {"time": 0, "event": "apply", "index": index, "term": term, "id": rid}


def _crash(point):
    return {"time": 0, "event": "crash", "point": point}


def _log(n, term=1):
    """n applies: a no-op then client requests c1:1, c1:2, ..."""
    return [_apply(1, term, "noop")] + [_apply(i, term, f"c1:{i - 1}") for i in range(2, n + 1)]


def _write(tmp_path, node, events, tail=""):
    path = tmp_path / node / "events.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in events) + tail)
    return read_events(node, path)


def _acked(rid, f="put"):
    return Call(0, f, "k", "v", None, "ok", 0, 1, 0, 1, request=rid)


def _kinds(result):
    return sorted({v["kind"] for v in result["violations"]})


def test_agreeing_nodes_are_valid(tmp_path):
    nodes = [_write(tmp_path, "n1", [_start(), _leader(1), *_log(4)]),
             _write(tmp_path, "n2", [_start(), *_log(4)]),
             _write(tmp_path, "n3", [_start(), *_log(2)])]
    result = check_agreement(nodes, [_acked("c1:1"), _acked("c1:3")])
    assert result["valid"] is True, result["violations"]
    assert result["leaders"] == {"1": ["n1"]}
    assert result["committed"] == 4


def test_different_entry_at_one_index(tmp_path):
    other = [*_log(2), _apply(3, 2, "c9:1"), _apply(4, 1, "c1:3")]
    nodes = [_write(tmp_path, "n1", [_start(), *_log(4)]),
             _write(tmp_path, "n2", [_start(), *other])]
    result = check_agreement(nodes)
    assert _kinds(result) == ["divergent-entry"]
    violation = result["violations"][0]
    assert violation["index"] == 3
    assert violation["entries"] == {"n1": {"term": 1, "id": "c1:2"},
                                    "n2": {"term": 2, "id": "c9:1"}}
    assert result["valid"] is False and "index 3" in result["cause"]


def test_gap_in_applies(tmp_path):
    events = [_start(), *_log(2), _apply(4, 1, "c1:3")]
    result = check_agreement([_write(tmp_path, "n1", events)])
    assert _kinds(result) == ["apply-gap"]
    assert result["violations"][0]["index"] == 4


def test_reordered_applies(tmp_path):
    events = [_start(), *_log(3), _apply(2, 1, "c1:1")]
    result = check_agreement([_write(tmp_path, "n1", events)])
    assert _kinds(result) == ["apply-reorder"]


def test_restart_may_reapply_from_the_start_or_a_snapshot(tmp_path):
    events = [_start(), *_log(3), _start(), *_log(4), _start(), *_log(4)[2:]]
    assert check_agreement([_write(tmp_path, "n1", events)])["valid"] is True


def test_a_crash_event_is_neither_an_apply_nor_a_new_life(tmp_path):
    events = [_start(), _leader(1), *_log(3), _crash("after-apply"), _start(), *_log(4),
              _crash("after-vote")]
    node = _write(tmp_path, "n1", events)
    assert [a.life for a in node.applies] == [1] * 3 + [2] * 4
    assert node.leader_terms == (1,)
    result = check_agreement([node], [_acked("c1:2")])
    assert result["valid"] is True and result["committed"] == 4


def test_two_leaders_in_one_term(tmp_path):
    nodes = [_write(tmp_path, "n1", [_start(), _leader(3)]),
             _write(tmp_path, "n2", [_start(), _leader(3), _leader(4)])]
    result = check_agreement(nodes)
    assert _kinds(result) == ["two-leaders"]
    assert result["violations"][0]["nodes"] == ["n1", "n2"]
    assert result["leaders"] == {"3": ["n1", "n2"], "4": ["n2"]}


def test_acknowledged_write_missing(tmp_path):
    nodes = [_write(tmp_path, "n1", [_start(), *_log(3)])]
    result = check_agreement(nodes, [_acked("c1:2"), _acked("c7:1", "append")])
    assert _kinds(result) == ["lost-write"]
    assert result["violations"][0]["request"] == "c7:1"


def test_unacknowledged_writes_may_be_missing(tmp_path):
    nodes = [_write(tmp_path, "n1", [_start(), *_log(3)])]
    info = Call(0, "put", "k", "v", None, "info", 0, 1, 0, 1, request="c7:1")
    read = Call(0, "get", "k", None, "v", "ok", 0, 1, 0, 1, request="c7:2")
    assert check_agreement(nodes, [info, read])["valid"] is True


def test_request_applied_twice(tmp_path):
    events = [_start(), *_log(3), _apply(4, 1, "c1:2")]
    result = check_agreement([_write(tmp_path, "n1", events)], [_acked("c1:2")])
    assert _kinds(result) == ["duplicate-apply"]
    assert result["violations"][0]["indexes"] == [3, 4]


def test_noops_may_repeat(tmp_path):
    events = [_start(), *_log(2), _apply(3, 2, "noop"), _apply(4, 3, None)]
    assert check_agreement([_write(tmp_path, "n1", events)])["valid"] is True


def test_committed_entry_lost_after_restart(tmp_path):
    events = [_start(), *_log(4), _start(), *_log(2), _apply(3, 2, "c5:1")]
    result = check_agreement([_write(tmp_path, "n1", events)])
    assert _kinds(result) == ["lost-committed-entry"]
    violation = result["violations"][0]
    assert violation["index"] == 3 and violation["before"]["id"] == "c1:2"


def test_torn_tail_is_tolerated(tmp_path):
    node = _write(tmp_path, "n1", [_start(), *_log(3)], tail='{"time": 5, "event": "app')
    assert len(node.applies) == 3
    assert "torn last line" in node.warnings[0]
    assert check_agreement([node])["warnings"] == list(node.warnings)


def test_bad_line_in_the_middle_names_file_and_line(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"event": "start"}\n{"event": "apply", "index": "x"}\n')
    with pytest.raises(HistoryError, match=r"events.jsonl:2: field 'index' must be an integer"):
        read_events("n1", path)

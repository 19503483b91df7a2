"""The read rules over synthetic events: each `read` event against the leaders elected and the
entries applied, on any node, before the read arrived."""

from __future__ import annotations

import json

import pytest

from splitbrain.checker.agreement import check_agreement
from splitbrain.history import HistoryError


def _leader(time, term):
    return {"time": time, "event": "role", "role": "leader", "term": term}


def _apply(time, index, term=1):
    return {"time": time, "event": "apply", "index": index, "term": term, "id": f"c:{index}"}


def _read(asked, term, index):
    return {"time": asked + 5, "event": "read", "asked": asked, "term": term, "index": index}


def _check(tmp_path, events, start=None, **options):
    files = []
    for node, lines in events.items():
        path = tmp_path / node / "events.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        first = {"event": "start", **(start or {})}
        path.write_text("".join(json.dumps(e) + "\n" for e in [first, *lines]))
        files.append((node, path))
    return check_agreement(files, **options)


def _found(result, kind):
    return [v for v in result["violations"] if v["kind"] == kind]


def test_a_read_answered_in_an_older_term_after_a_successor_was_elected(tmp_path):
    result = _check(tmp_path, {
        "n1": [_leader(10, 2), _read(20, 2, 0),  # before term 3 had a leader: fine
               _read(40, 2, 0)],  # the deposed leader answers, though nothing was applied yet
        "n2": [],
        "n3": [_leader(30, 3), _read(35, 3, 0)],  # the new leader's own: fine
    })
    assert result["read_safety"] == "checked 3 reads"
    found = _found(result, "read-by-current-leader")
    assert [(v["node"], v["term"], v["elected"], v["time"]) for v in found] == [("n1", 2, 3, 40)]
    assert found[0]["message"] == ("n1 answered a read confirmed in term 2, but a leader of term "
                                   "3 had been elected 0.000 ms before the read reached it")
    assert not _found(result, "read-sees-applied")  # the window linearizability needs


def test_a_read_answered_below_an_index_applied_before_it_arrived(tmp_path):
    result = _check(tmp_path, {
        "n1": [_leader(1, 1), _apply(1_000_010, 1), _apply(2_000_000, 2), _apply(3_000_000, 3)],
        "n2": [_read(10, 1, 0),  # nothing was applied when it arrived
               _read(2_500_000, 1, 2),  # 2 was: fine
               _read(3_500_000, 1, 2),  # 3 was applied on n1 before it arrived
               _read(3_000_000, 1, 2)],  # arrived as 3 was applied: not before it
    })
    found = _found(result, "read-sees-applied")
    assert [(v["node"], v["index"], v["needed"], v["time"]) for v in found] == [
        ("n2", 2, 3, 3_500_000)]
    assert found[0]["message"] == ("n2 answered a read at index 2, but index 3 had been applied "
                                   "0.500 ms before the read reached it")
    assert result["valid"] is False
    assert not _found(result, "read-by-current-leader")


def test_a_leader_elected_at_the_instant_a_read_arrives_is_not_before_it(tmp_path):
    result = _check(tmp_path, {"n1": [_leader(10, 2), _read(30, 2, 0)],
                               "n2": [_leader(30, 3)]})
    assert result["valid"] is True and result["read_safety"] == "checked 1 read"


def test_with_clock_faults_reads_are_checked_only_if_every_life_stamped_the_machine_clock(
        tmp_path):
    events = {"n1": [_leader(10, 2), _read(40, 2, 0)], "n2": [_leader(30, 3)]}
    machine = _check(tmp_path / "a", events, start={"clock": "machine"}, clock_faults=True)
    assert machine["read_safety"] == "checked 1 read"
    assert [v["node"] for v in _found(machine, "read-by-current-leader")] == ["n1"]
    # A life that stamped its own clock (or an older node that does not say) may be skewed.
    events["n2"].insert(0, {"event": "start", "clock": "node"})
    for where, start in (("b", {"clock": "machine"}), ("c", {})):
        skewed = _check(tmp_path / where, events, start=start, clock_faults=True)
        assert skewed["valid"] is True
        assert skewed["read_safety"] == "not checked: clock faults skew the nodes' event times"


def test_reads_are_not_checked_without_read_events(tmp_path):
    none = _check(tmp_path, {"n1": [_leader(10, 2)]})
    assert none["read_safety"] == "not checked: no node's events record a read it answered"


@pytest.mark.parametrize("field, value, problem", [
    ("asked", "10", "field 'asked' must be an integer"),
    ("term", None, "field 'term' must be an integer"),
    ("index", 1 << 70, "field 'index' is beyond 64 bits"),
])
def test_a_bad_read_event_names_the_file_line_and_field(tmp_path, field, value, problem):
    with pytest.raises(HistoryError) as info:
        _check(tmp_path, {"n1": [_leader(10, 1), {**_read(20, 1, 0), field: value}]})
    assert info.value.line == 3 and problem in str(info.value)
    assert "n1/events.jsonl" in str(info.value)

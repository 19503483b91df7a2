"""The unsafe-commit rule over synthetic events: each node's durable log from `recovered`,
`stored` and installed snapshots, against the highest entry applied anywhere."""

from __future__ import annotations

import json

import pytest

from splitbrain.checker.agreement import check_agreement
from splitbrain.history import HistoryError

NODES = ("n1", "n2", "n3", "n4", "n5")


def _recovered(time, last=0, terms=(), snapshot=None):
    extra = {} if snapshot is None else {"snapshot": snapshot[0], "snapshot_term": snapshot[1]}
    return {"time": time, "event": "recovered", "term": 0, "vote": None, "commit": 0,
            "last": last, "terms": [list(t) for t in terms], **extra}


def _stored(time, first, last, *terms):
    return {"time": time, "event": "stored", "first": first, "last": last,
            "terms": [list(t) for t in terms]}


def _apply(time, index, term):
    return {"time": time, "event": "apply", "index": index, "term": term, "id": f"c:{index}"}


def _check(tmp_path, events, **options):
    files = []
    for node in NODES:
        path = tmp_path / node / "events.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [{"time": 0, "event": "start"}, _recovered(1), *events.get(node, [])]
        path.write_text("".join(json.dumps(e) + "\n" for e in lines))
        files.append((node, path))
    return check_agreement(files, **options)


def _unsafe(result):
    return [v for v in result["violations"] if v["kind"] == "unsafe-commit"]


def _figure8(counted_by_own_term):
    """Figure 8 of the Raft paper, in events. Entry 1 (term 1) commits on n1-n3. n1 leads
    term 2 and stores entry 2 on n1 and n2 only; n5 leads term 3 and stores its own entry 2
    alone; n1 leads term 4 and copies its entry 2 to n3. Then n1 applies entry 2: with
    `counted_by_own_term`, only after its term-4 entry 3 is stored by a majority (n1-n3) too,
    as Raft requires; else at once, by counting replicas of term 2."""
    one = [_stored(10, 1, 1, (1, 1))]
    events = {n: list(one) for n in ("n1", "n2", "n3")}
    events["n1"] += [_apply(20, 1, 1), _stored(30, 2, 2, (2, 2))]
    events["n2"] += [_stored(31, 2, 2, (2, 2))]
    events["n5"] = [_stored(40, 1, 2, (1, 1), (2, 3))]
    events["n3"] += [_stored(50, 2, 2, (2, 2))]
    if counted_by_own_term:
        for node in ("n1", "n2", "n3"):
            events[node].append(_stored(55, 3, 3, (3, 4)))
        events["n1"] += [_apply(60, 2, 2), _apply(61, 3, 4)]
    else:
        events["n1"] += [_apply(60, 2, 2)]
    return events


def test_figure_8_commit_of_an_old_term_is_unsafe_when_it_happens(tmp_path):
    result = _check(tmp_path, _figure8(counted_by_own_term=False))
    assert result["valid"] is False
    [found] = _unsafe(result)
    assert (found["node"], found["index"], found["term"], found["time"]) == ("n5", 2, 2, 60)
    assert (found["last"], found["last_term"]) == (2, 3)
    assert found["as_up_to_date_as"] == list(NODES)
    assert "n5's log (last entry 2, term 3) lacked entry 2 (term 2)" in found["message"]


def test_the_same_entries_committed_with_an_entry_of_the_leaders_term_are_safe(tmp_path):
    result = _check(tmp_path, _figure8(counted_by_own_term=True))
    assert _unsafe(result) == []
    assert result["valid"] is True
    assert result["commit_safety"].startswith("checked at ")


def test_a_node_behind_a_minority_only_is_no_violation(tmp_path):
    """n4 and n5 lack entry 2, which n1-n3 stored: each is as up to date as two logs."""
    events = {n: [_stored(10, 1, 2, (1, 1))] for n in ("n1", "n2", "n3")}
    events["n4"] = [_stored(10, 1, 1, (1, 1))]
    events["n1"].append(_apply(20, 2, 1))
    assert _unsafe(_check(tmp_path, events)) == []


def test_a_quorum_miscounted_is_unsafe(tmp_path):
    """Entry 2 applied while only n1 and n2 stored it: n3 (entry 1 only) is as up to date as
    n3, n4 and n5."""
    events = {n: [_stored(10, 1, 1, (1, 1))] for n in NODES}
    events["n1"] += [_stored(15, 2, 2, (2, 1)), _apply(20, 2, 1)]
    events["n2"] = [*events["n2"], _stored(15, 2, 2, (2, 1))]
    found = _unsafe(_check(tmp_path, events))
    assert [f["node"] for f in found] == ["n3", "n4", "n5"]  # each reported once


def test_what_a_node_stored_counts_before_an_apply_at_the_same_time(tmp_path):
    events = {n: [_stored(10, 1, 1, (1, 1))] for n in NODES}
    for node in ("n1", "n2", "n3"):
        events[node].append(_stored(20, 2, 2, (2, 1)))
    events["n1"].append(_apply(20, 2, 1))
    assert _unsafe(_check(tmp_path, events)) == []


def test_a_restart_recovers_the_log_its_event_describes(tmp_path):
    """n3 stored entry 2, then recovered without it (a power loss took it): with entry 2
    applied, n3, n4 and n5 lack it and are as up to date as each other."""
    events = {n: [_stored(10, 1, 1, (1, 1))] for n in NODES}
    for node in ("n1", "n2", "n3"):
        events[node].append(_stored(15, 2, 2, (2, 1)))
    events["n1"].append(_apply(20, 2, 1))
    events["n3"] += [{"time": 30, "event": "start"}, _recovered(31, 1, [(1, 1)])]
    found = _unsafe(_check(tmp_path, events))
    assert [(f["node"], f["time"]) for f in found] == [("n3", 31), ("n4", 31), ("n5", 31)]


def test_an_installed_snapshot_keeps_a_matching_suffix_and_drops_a_conflicting_one(tmp_path):
    """n4 holds entries 1-3 (term 1) and installs a snapshot of entry 2 (term 1): it keeps
    entry 3. n5 holds entry 2 of term 9, and installs the same snapshot: it drops its log.
    Entry 3 applied by n1 with n1-n4 holding it: n5 is behind all of them."""
    events = {n: [_stored(10, 1, 3, (1, 1))] for n in ("n1", "n2", "n3", "n4")}
    events["n4"].append({"time": 12, "event": "snapshot", "index": 2, "term": 1,
                         "digest": "d", "kind": "installed"})
    events["n5"] = [_stored(10, 1, 2, (1, 1), (2, 9)),
                    {"time": 12, "event": "snapshot", "index": 2, "term": 1, "digest": "d",
                     "kind": "installed"}]
    events["n1"].append(_apply(20, 3, 1))
    assert _unsafe(_check(tmp_path, events)) == []
    # Had n5 kept its entry 2 of term 9, it would be ahead of everyone: the same events
    # without its install show the violation.
    events["n5"].pop()
    [found] = _unsafe(_check(tmp_path, events))
    assert found["node"] == "n5"


def test_runs_with_clock_faults_are_not_checked(tmp_path):
    result = _check(tmp_path, _figure8(counted_by_own_term=False), clock_faults=True)
    assert _unsafe(result) == []
    assert "clock faults" in result["commit_safety"]


def test_an_apply_time_beyond_64_bits_or_an_index_out_of_reach_is_left_out(tmp_path):
    events = {n: [_stored(10, 1, 1, (1, 1))] for n in NODES}
    events["n1"].append(_apply(2**64, 1, 1))
    events["n2"] += [_apply(20, -1, 1), _apply(20, 0, 1), _apply(20, 2**40, 1)]
    result = _check(tmp_path, events)
    assert _unsafe(result) == []
    assert result["commit_safety"] == "checked at 0 instants"


def test_files_without_log_events_are_not_checked(tmp_path):
    files = []
    for node in NODES:
        path = tmp_path / node / "events.jsonl"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(_apply(5, 1, 1)) + "\n")
        files.append((node, path))
    result = check_agreement(files)
    assert result["valid"] is True
    assert result["commit_safety"] == "not checked: no node's events describe its log"


@pytest.mark.parametrize(("event", "field"), [
    (_stored(10, "1", 1, (1, 1)), "first"),
    ({**_stored(10, 1, 1, (1, 1)), "terms": [[1]]}, "terms"),
    ({**_stored(10, 1, 1, (1, 1)), "terms": [[1, 1], [1, 2]]}, "terms"),
    (_stored(10, 2, 3, (1, 1)), "terms"),
    ({**_stored(10, 1, 1, (1, 1)), "time": None}, "time"),
    ({**_recovered(10, 1, [(1, 1)]), "snapshot": "x", "snapshot_term": 1}, "snapshot"),
    (_stored(10, 1, 2**64, (1, 1)), "beyond 64 bits"),
    (_stored(2**70, 1, 1, (1, 1)), "beyond 64 bits"),
])  # fmt: skip
def test_a_bad_log_event_names_its_file_line_and_field(tmp_path, event, field):
    with pytest.raises(HistoryError) as caught:
        _check(tmp_path, {"n2": [event]})
    assert "n2" in str(caught.value) and ":3:" in str(caught.value)
    assert field in str(caught.value)

"""The restarts checker: a node that refuses to start after a fault that should not stop it,
or that exits by itself while running."""

from __future__ import annotations

from typing import Any

from splitbrain.checker.restarts import check_restarts
from splitbrain.history import Op

GAP = "n1 exited with 3 while starting (raft.wal: offset 52: entry 833 leaves a gap after 828)"


def nemesis(*events: tuple[str, dict[str, Any]]) -> list[Op]:
    return [Op(i, i * 1000, "nemesis", "info", f, value) for i, (f, value) in enumerate(events)]


def test_a_refusal_to_start_after_a_kill_is_a_violation_naming_the_node_and_its_message():
    result = check_restarts(nemesis(
        ("kill", {"nodes": ["n1"]}),
        ("start", {"nodes": [], "errors": {"n1": GAP}, "refused": ["n1"]}),
        ("start", {"nodes": ["n1"]}),
    ))
    assert result["valid"] is False and result["count"] == 1
    assert result["refusals"] == [{"node": "n1", "time": 1000, "index": 1, "message": GAP}]
    assert result["cause"].startswith("n1 refused to start") and "gap after 828" in result["cause"]
    assert result["checked"] == 2


def test_starts_that_succeed_time_out_or_are_killed_are_not_refusals():
    result = check_restarts(nemesis(
        ("start", {"nodes": ["n1", "n2"], "fault": "restart"}),
        ("start", {"nodes": [], "errors": {"n3": "n3 was not up within 30.0s"}}),
        ("start", {"nodes": [], "errors": {"n3": "n3 exited with -9 while starting"}}),
    ))
    assert result == {"valid": True, "checked": 2, "refusals": [], "count": 0, "exits": [],
                      "exit_count": 0}


def test_a_full_disk_or_a_corrupt_fault_excuses_a_refusal_but_only_while_it_lasts():
    refusal = {"nodes": [], "errors": {"n2": "n2 exited with 1: No space left"}, "refused": ["n2"]}
    result = check_restarts(nemesis(
        ("start-disk-full", {"nodes": ["n2", "n3"]}),
        ("start", refusal),
        ("start", {"nodes": [], "fault": "corrupt", "errors": {"n1": GAP}, "refused": ["n1"]}),
        ("stop-disk-full", {"nodes": ["n2", "n3"]}),
        ("start", {**refusal, "fault": "disk-full"}),
    ))
    assert result["valid"] is False
    assert [(r["node"], r["index"]) for r in result["refusals"]] == [("n2", 4)]


def test_odd_values_are_skipped_not_raised_on():
    result = check_restarts(nemesis(
        ("start", "n1"), ("start", {"nodes": "n1", "refused": [7, None]}),
        ("start", {"refused": ["n1"], "errors": ["not a dict"]}),
    ))
    assert result["valid"] is False and result["refusals"][0]["message"] == ""


def test_a_node_that_exits_by_itself_is_a_violation_unless_its_disk_is_full():
    status = "exited with 1 (AssertionError: applied entry 7 is not in the log)"
    result = check_restarts(nemesis(
        ("start-disk-full", {"nodes": ["n2"]}),
        ("exit", {"nodes": ["n2"], "status": "exited with 1 (No space left on device)"}),
        ("stop-disk-full", {"nodes": ["n2"]}),
        ("exit", {"nodes": ["n3"], "status": status}),
        ("start", {"nodes": ["n3"], "fault": "exit"}),
        ("start", {"nodes": [], "errors": {"n1": GAP}, "refused": ["n1"]}),
        ("corrupt", {"node": "n1", "file": "raft.wal", "offset": 9, "bit": 1}),
        ("start", {"nodes": ["n1"], "fault": "corrupt"}),  # started on the damage
        ("exit", {"nodes": ["n1"], "status": "exited with 3 (raft.wal: offset 9)"}),
        ("corrupt", {"node": "n2", "file": "raft.wal", "offset": 9, "bit": 1}),
        ("corrupt-refused", {"node": "n2", "message": "raft.wal: offset 9"}),  # repaired
        ("start", {"nodes": ["n2"], "fault": "corrupt"}),
        ("exit", {"nodes": ["n2"], "status": status}),
    ))
    assert result["valid"] is False and result["exit_count"] == 2 and result["count"] == 1
    assert result["exits"] == [{"node": "n3", "time": 3000, "index": 3, "message": status},
                               {"node": "n2", "time": 12000, "index": 12, "message": status}]
    assert result["cause"].startswith("n3 exited by itself while running")
    assert "not in the log" in result["cause"]

"""splitbrain.testing.detection: which checker caught a run, and when, on the run's clock."""

from __future__ import annotations

import json

from splitbrain.store import RunDir
from splitbrain.testing.detection import detect
from splitbrain.testing.runs import build_run

WALL0 = 1_800_000_000_000_000_000  # wall-clock ns of the made-up run's time 0
MS = 1_000_000


def write_lines(path, objs):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(o) + "\n" for o in objs))


def made_run(tmp_path, violations, linear=None):
    """Two acknowledged writes (c1:1 in [10, 20] ms, c2:1 in [30, 40] ms), each first applied by
    n1 at run time 15 and 35 ms, so node events sit on the run's clock with no slack; n2 becomes
    leader of term 2 at 50 ms and applies c1:1 again at index 3 at 60 ms."""
    run = RunDir(tmp_path / "run")
    history = []
    for i, (cid, start) in enumerate([("c1:1", 10), ("c2:1", 30)]):
        common = {"process": i, "f": "write", "key": "k", "value": i, "request": cid}
        history.append({"index": len(history), "time": start * MS, "type": "invoke", **common})
        history.append({"index": len(history), "time": (start + 10) * MS, "type": "ok",
                        **common})
    write_lines(run.history, history)
    write_lines(run.node_events("n1"), [
        {"time": WALL0, "event": "start"},
        {"time": WALL0 + 1 * MS, "event": "role", "role": "leader", "term": 2},
        {"time": WALL0 + 15 * MS, "event": "apply", "index": 1, "term": 1, "id": "c1:1"},
        {"time": WALL0 + 35 * MS, "event": "apply", "index": 2, "term": 1, "id": "c2:1"},
    ])
    write_lines(run.node_events("n2"), [
        {"time": WALL0, "event": "start"},
        {"time": WALL0 + 50 * MS, "event": "role", "role": "leader", "term": 2},
        {"time": WALL0 + 60 * MS, "event": "apply", "index": 3, "term": 2, "id": "c1:1"},
    ])
    checkers = {"linearizable": linear or {"valid": True},
                "log-agreement": {"valid": not violations, "violations": violations},
                "stats": {"valid": True}}
    run.write_json(run.results, {"valid": False, "cause": "made up", "checkers": checkers})
    return run


def test_a_linearizability_failure_is_timed_by_the_op_it_could_not_linearize(tmp_path):
    run = build_run(tmp_path, calls=200, seed=5, failure="linearizability")
    op = json.loads(run.results.read_text())["checkers"]["linearizable"]["failure"]["op"]
    found = detect(run)
    assert (found.valid, found.checker, found.kind) == (False, "linearizable", "linearizability")
    assert found.detect_s == round(op["end"] / 1e9, 3)


def test_node_events_are_placed_on_the_run_clock_and_the_earliest_sign_wins(tmp_path):
    two_leaders = {"kind": "two-leaders", "term": 2, "nodes": ["n1", "n2"]}
    duplicate = {"kind": "duplicate-apply", "request": "c1:1", "indexes": [1, 3]}
    lost = {"kind": "lost-write", "request": "c2:1"}
    run = made_run(tmp_path, [lost, duplicate, two_leaders])
    found = detect(run)
    # two-leaders: n2's leadership at 50 ms; duplicate-apply: 60 ms; lost-write: 40 ms.
    assert (found.checker, found.kind, found.detect_s) == ("log-agreement", "lost-write", 0.04)
    assert detect(made_run(tmp_path / "b", [duplicate, two_leaders])).detect_s == 0.05
    assert detect(made_run(tmp_path / "c", [duplicate])).detect_s == 0.06


def test_a_violation_naming_a_node_event_line_is_timed_by_that_event(tmp_path):
    gap = {"kind": "apply-gap", "node": "n1", "index": 2, "after": 0, "line": 4}
    found = detect(made_run(tmp_path, [gap]))
    assert (found.kind, found.detect_s) == ("apply-gap", 0.035)


def test_a_divergent_snapshot_is_timed_by_the_first_snapshot_that_contradicts_another(tmp_path):
    run = made_run(tmp_path, [{"kind": "divergent-snapshot", "index": 2}])
    for node, at, digest in [("n1", 36, "aa"), ("n2", 45, "aa"), ("n1", 55, "bb")]:
        with run.node_events(node).open("a") as f:
            f.write(json.dumps({"time": WALL0 + at * MS, "event": "snapshot", "index": 2,
                                "term": 1, "digest": digest, "kind": "taken"}) + "\n")
    assert detect(run).detect_s == 0.055


def test_a_sign_that_cannot_be_placed_still_names_its_checker(tmp_path):
    odd = {"kind": "something-new", "message": "a checker added later"}
    found = detect(made_run(tmp_path, [odd]))
    assert (found.checker, found.kind, found.detect_s) == ("log-agreement", "something-new", None)
    linear = {"valid": False, "failure": {"op": {"start": 70 * MS, "end": 80 * MS}}}
    earlier = detect(made_run(tmp_path / "b", [odd], linear=linear))
    assert (earlier.checker, earlier.detect_s) == ("linearizable", 0.08)


def test_a_sim_invariant_violation_is_named_by_its_checker_and_timed_by_its_time(tmp_path):
    run = made_run(tmp_path, [])
    results = json.loads(run.results.read_text())
    results["checkers"]["commit-by-leader"] = {"valid": False, "violations": [
        {"node": "n2", "index": 4, "time": WALL0 + 45 * MS, "message": "n2 commits up to 4"}]}
    run.write_json(run.results, results)
    found = detect(run)
    assert (found.checker, found.kind, found.detect_s) == ("commit-by-leader", "commit-by-leader",
                                                           0.045)


def test_a_valid_run_and_a_run_without_results(tmp_path):
    valid = detect(build_run(tmp_path, calls=100, seed=2))
    assert (valid.valid, valid.checker, valid.kind, valid.detect_s) == (True, None, None, None)
    missing = detect(RunDir(tmp_path / "nothing"))
    assert missing.valid is None and missing.cause == "no readable results.json"


def test_a_node_exit_or_refusal_is_timed_by_whichever_came_first(tmp_path):
    run = made_run(tmp_path, [])
    results = json.loads(run.results.read_text())
    results["checkers"]["restarts"] = {
        "valid": False,
        "refusals": [{"node": "n1", "time": 45 * MS, "index": 9, "message": "gap"}],
        "exits": [{"node": "n2", "time": 25 * MS, "index": 5, "message": "exited with 1"}],
    }
    run.write_json(run.results, results)
    found = detect(run)
    assert (found.checker, found.kind, found.detect_s) == ("restarts", "node-exit", 0.025)

"""Run directory layout: creation, the latest link, discovery."""

from __future__ import annotations

import os

from splitbrain.store import RunDir, create_run, find_runs


def test_create_run_makes_the_layout_and_points_latest_at_it(tmp_path):
    run = create_run(tmp_path, "register")
    assert run.path.parent == tmp_path / "register"
    assert run.nodes.is_dir()
    assert (tmp_path / "latest").resolve() == run.path.resolve()
    second = create_run(tmp_path, "register")
    assert (tmp_path / "latest").resolve() == second.path.resolve()
    assert second.path != run.path


def test_find_runs_lists_runs_oldest_first_and_ignores_latest(tmp_path):
    runs = [create_run(tmp_path, name) for name in ("a", "b", "a")]
    for run in runs:
        run.history.write_text("")
    found = find_runs(tmp_path)
    assert [r.path for r in found] == [r.path for r in runs]
    assert find_runs(runs[1].path) == [runs[1]]


def test_write_json_is_atomic_and_node_names_sort_naturally(tmp_path):
    run = RunDir(tmp_path)
    run.write_json(run.results, {"valid": True})
    assert run.read_json(run.results) == {"valid": True}
    assert not list(tmp_path.glob("*.tmp"))
    for name in ("n10", "n2", "n1"):
        os.makedirs(run.node_dir(name))
    assert run.node_names() == ["n1", "n2", "n10"]

"""What `splitbrain run` adds to results.json when the cluster did not recover, and what it
does with disk faults on a machine without FUSE."""

from __future__ import annotations

import argparse

import pytest

from splitbrain import run
from splitbrain.cluster import disks
from splitbrain.run import recovery_warnings
from splitbrain.workloads.interpreter import Tally


def test_a_recovered_run_has_no_warnings():
    assert recovery_warnings(Tally(leader_after_heal=True, final_unread=0)) == []


def test_no_leader_and_unread_keys_are_reported():
    warnings = recovery_warnings(Tally(leader_after_heal=False, final_unread=3))
    assert any("no leader" in w for w in warnings)
    assert any("3 key(s) could not be read" in w and "did not recover" in w for w in warnings)


def test_unread_keys_with_a_leader_are_not_called_a_cluster_that_did_not_recover():
    """`--op-timeout 0.001`: a leader was back, every final read timed out."""
    [warning] = recovery_warnings(Tally(leader_after_heal=True, final_unread=2))
    assert "2 key(s) could not be read" in warning and "did not recover" not in warning
    assert "--op-timeout" in warning


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    run.add_arguments(parser)
    return parser.parse_args(list(argv))


NO_FUSE = "/dev/fuse does not exist (FUSE is not available in this kernel or container)"


def test_all_without_fuse_leaves_out_the_faults_that_need_the_mount_and_says_why(monkeypatch):
    monkeypatch.setattr(disks, "missing", lambda: NO_FUSE)
    notes: list[str] = []
    config = run.config_from_args(parse("--nemesis", "all", "--seed", "1"), notes)
    assert "power-loss" not in config.faults and "disk-full" not in config.faults
    assert "corrupt" in config.faults  # it damages files without a mount
    assert f"no power-loss, disk-full: {NO_FUSE}" in notes


def test_a_disk_fault_named_without_fuse_could_not_run(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(disks, "missing", lambda: NO_FUSE)
    code = run.run(parse("--nemesis", "partition,power-loss", "--out", str(tmp_path)))
    assert code == 3
    assert f"cannot run target raft: {NO_FUSE}" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # said before anything was made


def test_an_interval_below_the_schedules_milliseconds_is_a_usage_error(tmp_path, capsys):
    """`--nemesis-interval 0.0001` planned forever: the run hung before starting a node."""
    from splitbrain.cli import main

    assert main(["run", "--out", str(tmp_path), "--nemesis-interval", "0.0001"]) == 64
    assert "--nemesis-interval must be at least 0.01 seconds" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("node_arg", "named"), [
    ("--frobnicate", "unrecognized arguments: --frobnicate"),
    ("--read-mode=bogus", "invalid choice: 'bogus'"),
    ("--election-tick=1", "need 1 <= --heartbeat-tick < --election-tick"),
    ("--help", "unrecognized arguments: --help"),
])  # fmt: skip
def test_node_arguments_the_bundled_node_refuses_are_a_usage_error_before_it_starts(
        tmp_path, capsys, node_arg, named):
    """They used to start the cluster, whose nodes exited with their usage line: exit 3."""
    from splitbrain.cli import main

    assert main(["run", "--out", str(tmp_path), f"--node-arg={node_arg}"]) == 64
    err = capsys.readouterr().err
    assert f"--node-arg {node_arg}: " in err and named in err, err
    assert list(tmp_path.iterdir()) == []


def test_node_arguments_the_node_takes_pass():
    config = run.config_from_args(parse("--node-arg=--read-mode=lease",
                                        "--node-arg=--election-tick=30"))  # fmt: skip
    assert config.node_args == ("--read-mode=lease", "--election-tick=30")

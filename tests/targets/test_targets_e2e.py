"""`splitbrain run` against other targets, end to end: a TOML target (kvd.py, a tiny HTTP store)
is valid and its broken variant caught; the bundled Raft gives the same verdicts in proxy and
netns modes; etcd is valid under every fault it takes and its serializable reads are caught.

netns and etcd tests need root and Debian's etcd-server (CI has both); they skip saying why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from splitbrain.checker.read_safety import RULES as READ_RULES
from splitbrain.cli import main
from splitbrain.cluster import disks
from splitbrain.testing.unsafe import CONFIGURATIONS, PROVOCATIONS
from tests.netns import needs_etcd, needs_netns
from tests.targets.test_tomlfile import KVD
from tests.test_run_e2e import UNSAFE_SEEDS, results, splitbrain_run

FAST = ("--rate", "200", "--nemesis-interval", "1.5")


@pytest.mark.slow
def test_a_toml_target_runs_end_to_end_and_log_agreement_is_not_run(tmp_path):
    code, run, out = splitbrain_run(
        tmp_path, "--target", str(KVD), "--nodes", "3", "--time-limit", "6",
        "--nemesis", "partition,kill:leader,pause", "--seed", "3", *FAST)
    assert code == 0, out
    res = results(run)
    assert res["checkers"]["linearizable"]["valid"] is True
    assert res["checkers"]["log-agreement"] == {
        "valid": "not-run", "reason": "target kvd writes no node events (events.jsonl)"}
    assert (": valid (linearizable; restarts; log-agreement not run: target kvd writes no node "
            "events") in " ".join(out.split())
    config = json.loads(run.config.read_text())
    assert config["target"] == str(KVD.resolve()) and config["target_capabilities"] == ["leader"]
    assert f"--target {KVD.resolve()}" in config["command"]
    assert "Not run: target kvd writes no node events" in run.report.read_text()
    assert res["checkers"]["stats"]["calls"] > 100


@pytest.mark.slow
def test_the_broken_variant_of_a_toml_target_is_caught(tmp_path):
    code, run, out = splitbrain_run(
        tmp_path, "--target", str(KVD), "--target-arg", "reads=local", "--nodes", "3",
        "--time-limit", "4", "--nemesis", "none", "--seed", "3", "--rate", "200")
    assert code == 1, out
    assert results(run)["checkers"]["linearizable"]["valid"] is False
    assert "--target-arg=reads=local" in json.loads(run.config.read_text())["command"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--target", "etcd", "--nemesis", "crash"], "crash: target etcd has no crash points"),
    (["--target", "etcd", "--network", "proxy"], "--network proxy: target etcd runs in netns only"),
    (["--target", "etcd", "--unsafe", "stale-reads"], "--unsafe stale-reads: target etcd has none"),
    (["--target", str(KVD), "--nemesis", "net"], "target kvd's peer traffic is not framed"),
    (["--target", "raft", "--target-arg", "x=1"], "target raft takes no --target-arg"),
])
def test_what_a_target_cannot_take_is_a_usage_error(capsys, argv, message):
    assert main(["run", *argv]) == 64
    assert message in capsys.readouterr().err


def test_what_the_machine_lacks_is_said_before_anything_starts(tmp_path, monkeypatch, capsys):
    from splitbrain.cluster import netns

    monkeypatch.setattr(netns, "missing", lambda: "network mode netns needs root")
    assert main(["run", "--network", "netns", "--out", str(tmp_path)]) == 3
    assert "cannot run target raft: network mode netns needs root" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # no run directory was made

    env = {**os.environ, "PATH": str(tmp_path)}  # no etcd on it
    proc = subprocess.run([sys.executable, "-m", "splitbrain", "run", "--target", "etcd",
                           "--out", str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=60)  # fmt: skip
    assert proc.returncode == 3
    assert "install Debian's etcd-server package" in proc.stderr


# The bundled Raft in netns mode, with exactly the arguments tests/test_run_e2e.py gives it in
# proxy mode (partitions: valid; stale reads provoked: caught): the same verdicts.
RAFT_CASES = {
    "partition": (0, ["--nodes", "3", "--time-limit", "8", "--nemesis", "partition",
                      "--nemesis-interval", "1.5", "--seed", "7", "--rate", "200"]),
    "stale-reads": (1, ["--nodes", "5", "--unsafe", "stale-reads",
                        *PROVOCATIONS["stale-reads"].args, "--seed", str(UNSAFE_SEEDS[0])]),
}


@pytest.mark.slow
@needs_netns
@pytest.mark.parametrize("case", sorted(RAFT_CASES))
def test_the_bundled_raft_gives_the_same_verdicts_in_netns_mode(tmp_path, case):
    expected, args = RAFT_CASES[case]
    code, run, out = splitbrain_run(tmp_path, *args, "--network", "netns")
    assert code == expected, out
    res = results(run)
    # The logs agree; a stale read answered is what the reads' rules see, as linearizability.
    kinds = {v["kind"] for v in res["checkers"]["log-agreement"]["violations"]}
    assert kinds <= set(READ_RULES) and bool(kinds) is (expected == 1), kinds
    assert res["checkers"]["linearizable"]["valid"] is (expected == 0)
    assert (run.path / "network.log").is_file() and not (run.path / "proxies.log").exists()


@pytest.mark.slow
@needs_netns
@needs_etcd
def test_etcd_is_valid_under_every_fault_it_takes(tmp_path):
    code, run, out = splitbrain_run(
        tmp_path, "--target", "etcd", "--nodes", "3", "--time-limit", "10", "--nemesis", "all",
        "--seed", "1", *FAST)
    assert code == 0, out
    config = json.loads(run.config.read_text())
    disk_faults = ["power-loss", "corrupt", "disk-full"] if disks.missing() is None else [
        "corrupt"]  # without FUSE, all leaves out what needs the mount
    assert config["nemesis"] == ["partition", "kill", "pause:all+leader+majority+minority+one",
                                 "restart", "net:drop", *disk_faults]  # leader pauses follow
    # node events
    assert config["network"] == "netns"
    assert results(run)["checkers"]["log-agreement"]["valid"] == "not-run"
    assert results(run)["checkers"]["stats"]["by_f"]["write"]["ok"] > 50


@pytest.mark.slow
@needs_netns
@needs_etcd
def test_etcd_serializable_reads_are_caught_under_partitions(tmp_path):
    # Whether a cut-off member answers a read after the majority overwrote its key depends on
    # timing: seed 1 was caught in 8 of 9 runs on a 2-core machine. As for the unsafe
    # variants, the seeds are tried in turn until one is caught, and a miss must be valid.
    provocation = CONFIGURATIONS["etcd-serializable-reads"]
    for seed in UNSAFE_SEEDS:
        (tmp_path / str(seed)).mkdir()
        code, run, out = splitbrain_run(tmp_path / str(seed), "--nodes", "5", *provocation.args,
                                        "--seed", str(seed))  # fmt: skip
        if code == 1:
            assert results(run)["checkers"]["linearizable"]["valid"] is False
            return
        assert code == 0, out
    raise AssertionError(f"serializable reads escaped every seed of {UNSAFE_SEEDS}")

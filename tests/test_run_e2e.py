"""`splitbrain run` end to end with real node processes: every fault kind against the bundled Raft
is valid; every deliberately unsafe variant is caught (exit 1) by the checker that should,
provoked as splitbrain.testing.unsafe says, and so are lease reads under clock faults, which
ReadIndex survives; killing the driver with SIGKILL leaves no process
behind and the history so far can still be checked.

Each run is a subprocess with a hard timeout; every process it started is reaped at teardown.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from splitbrain.cluster import clocks, disks
from splitbrain.config import UNSAFE_FLAGS
from splitbrain.history import read_jsonl
from splitbrain.nemesis.schedule import FAULTS
from splitbrain.run import FUSE_FAULTS
from splitbrain.store import RunDir
from splitbrain.testing.unsafe import CONFIGURATIONS, PROVOCATIONS

pytestmark = pytest.mark.slow

RUN_TIMEOUT = 150  # seconds for one whole run: start, main phase, recovery, check, report


def descendants(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def reap(procs: list[psutil.Process]) -> None:
    for p in procs:
        try:
            p.send_signal(signal.SIGCONT)
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=10)


def splitbrain_run(base: Path, *args: str) -> tuple[int, RunDir, str]:
    """Run `splitbrain run` to completion; returns (exit code, run dir, output)."""
    cmd = [sys.executable, "-m", "splitbrain", "run", "--out", str(base), *args]
    log = base / "output.txt"
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
    ps = psutil.Process(proc.pid)
    seen: dict[int, psutil.Process] = {}
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while proc.poll() is None:
            for child in descendants(ps):
                seen.setdefault(child.pid, child)
            if time.monotonic() > deadline:
                raise AssertionError(f"splitbrain run did not finish in {RUN_TIMEOUT}s")
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        leftover = [p for p in seen.values() if p.is_running() and p.status() != "zombie"]
        reap(leftover)
    out = log.read_text(errors="replace")
    assert not leftover, f"processes outlived the run: {leftover}"
    runs = sorted(base.glob("*/*/history.jsonl"))
    assert runs, out
    return proc.returncode, RunDir(runs[-1].parent), out


def results(run: RunDir) -> dict:
    return json.loads(run.results.read_text())


# Disk faults that need the FUSE mount (cluster/disks.py); corrupt damages files without it.
NEEDS_FUSE = pytest.mark.skipif(disks.missing() is not None,
                                reason=f"disk faults cannot run here: {disks.missing()}")
# Power loss of every node at once: nothing acknowledged may be lost (Raft's promise).
SPECS = {"power-loss": "power-loss:all"}


@pytest.mark.parametrize("fault", [pytest.param(f, marks=NEEDS_FUSE) if f in FUSE_FAULTS else f
                                   for f in FAULTS])  # fmt: skip
def test_every_fault_kind_against_the_bundled_raft_is_valid(tmp_path, fault):
    code, run, out = splitbrain_run(
        tmp_path, "--nodes", "3", "--time-limit", "8", "--nemesis", SPECS.get(fault, fault),
        "--nemesis-interval", "1.5", "--seed", "7", "--rate", "200",
    )
    assert code == 0, out
    res = results(run)
    assert res["valid"] is True
    assert res["checkers"]["linearizable"]["valid"] is True
    assert res["checkers"]["log-agreement"]["valid"] is True
    faults = [op for op in read_jsonl(run.history).ops if op.is_nemesis]
    assert faults, "the nemesis did something"
    assert run.report.is_file() and run.report.stat().st_size > 10_000
    calls_ok = [op for op in read_jsonl(run.history).ops if op.type == "ok"]
    assert len(calls_ok) > 100
    if fault == "power-loss":
        assert any(f.f == "power-loss" and len(f.value["nodes"]) == 3 for f in faults)
    if fault == "corrupt":  # every flipped bit of the WAL is detected: the node refuses
        damaged = [f.value["node"] for f in faults if f.f == "corrupt" and f.value["file"]]
        refused = [f.value for f in faults if f.f == "corrupt-refused"]
        # Nodes damaged together restart together and refuse in whatever order they start.
        assert damaged and Counter(r["node"] for r in refused) == Counter(damaged)
        assert all(re.search(r"(raft\.wal|snapshot): offset \d+: ", r["message"])
                   for r in refused)


def test_driver_killed_with_sigkill_leaves_no_process_and_a_checkable_history(tmp_path):
    cmd = [sys.executable, "-m", "splitbrain", "run", "--out", str(tmp_path), "--nodes", "3",
           "--time-limit", "60", "--nemesis", "partition,pause", "--nemesis-interval", "1",
           "--seed", "3"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ps = psutil.Process(proc.pid)
    children: dict[int, psutil.Process] = {}
    try:
        deadline = time.monotonic() + 60
        history = None
        while time.monotonic() < deadline:
            for child in descendants(ps):
                children.setdefault(child.pid, child)
            found = list(tmp_path.glob("*/*/history.jsonl"))
            history = found[0] if found else None
            if history and history.stat().st_size > 20_000 and len(children) >= 4:
                break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.1)
        else:
            raise AssertionError("the run never got going")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        gone, alive = psutil.wait_procs(list(children.values()), timeout=15)
        assert not alive, f"orphans after SIGKILL of the driver: {alive}"
        assert len(gone) >= 4  # 3 nodes and the proxy process at least
    finally:
        if proc.poll() is None:
            proc.kill()
        reap([p for p in children.values() if p.is_running()])
    check = subprocess.run(
        [sys.executable, "-m", "splitbrain", "check", str(history.parent)],
        capture_output=True, text=True, timeout=120,
    )
    assert check.returncode in (0, 1, 2), check.stdout + check.stderr
    assert "Traceback" not in check.stderr
    assert json.loads((history.parent / "results.json").read_text())["valid"] is not None


def test_a_node_that_dies_with_no_fault_to_stop_it_makes_the_run_invalid(tmp_path):
    # SIGKILL from outside stands for a node that dies by itself (an exception, an assertion,
    # the OOM killer): no fault of the nemesis did it, so it is a failure of the target.
    cmd = [sys.executable, "-m", "splitbrain", "run", "--out", str(tmp_path), "--nodes", "3",
           "--time-limit", "6", "--nemesis", "none", "--seed", "3", "--rate", "100"]
    with (tmp_path / "output.txt").open("wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
    ps = psutil.Process(proc.pid)
    seen: dict[int, psutil.Process] = {}
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        victim = None
        while proc.poll() is None:
            for child in descendants(ps):
                seen.setdefault(child.pid, child)
            found = list(tmp_path.glob("*/*/history.jsonl"))
            if victim is None and found and found[0].stat().st_size > 5_000:
                victim = next(p for p in seen.values() if "--id" in (argv := p.cmdline())
                              and argv[argv.index("--id") + 1] == "n2")  # fmt: skip
                victim.kill()
            assert time.monotonic() < deadline, "the run did not finish"
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        reap([p for p in seen.values() if p.is_running() and p.status() != "zombie"])
    out = (tmp_path / "output.txt").read_text(errors="replace")
    assert victim is not None and proc.returncode == 1, out
    run = RunDir(next(tmp_path.glob("*/*/history.jsonl")).parent)
    restarts = results(run)["checkers"]["restarts"]
    assert restarts["valid"] is False and restarts["exit_count"] == 1
    assert restarts["exits"][0]["node"] == "n2"
    assert restarts["exits"][0]["message"].startswith("killed by signal 9")
    nemesis = [op for op in read_jsonl(run.history).ops if op.is_nemesis]
    assert [op.f for op in nemesis][:2] == ["exit", "start"]  # and started again at once
    assert nemesis[1].value == {"nodes": ["n2"], "fault": "exit"}


# Each deliberately unsafe variant is run as testing/unsafe.py provokes it. A real run's timing
# is not the seed's to decide, so a variant gets up to three seeds: bench/unsafe.py measures the
# catch rates (most variants are caught on seed 1; a miss there is valid, never a crash).
UNSAFE_SEEDS = (1, 2, 3)


def test_every_unsafe_variant_has_a_provocation():
    assert set(PROVOCATIONS) == set(UNSAFE_FLAGS)


@pytest.mark.parametrize("flag", sorted(PROVOCATIONS))
def test_unsafe_variant_is_caught(tmp_path, flag):
    provocation = PROVOCATIONS[flag]
    if any(f.partition(":")[0] in FUSE_FAULTS for f in provocation.args) and disks.missing():
        pytest.skip(f"disk faults cannot run here: {disks.missing()}")
    checker = provocation.checker
    for seed in UNSAFE_SEEDS:
        (tmp_path / str(seed)).mkdir()
        code, run, out = splitbrain_run(tmp_path / str(seed), "--nodes", "5", "--unsafe", flag,
                                        *provocation.args, "--seed", str(seed))  # fmt: skip
        if code == 1:
            res = results(run)
            assert res["valid"] is False
            assert res["checkers"][checker]["valid"] is False, res["checkers"][checker]
            assert res["checkers"][checker]["cause"]
            return
        assert code == 0, out  # not caught on this seed: valid, never unknown or a crash
    raise AssertionError(f"--unsafe {flag} escaped every seed of {UNSAFE_SEEDS}")


# Lease reads are safe only while clocks agree: under the clock and partition faults that
# provoke them (testing/unsafe.py), a run is caught, and the same run with ReadIndex is valid,
# with every rule of log agreement checked.
# Whether a real run's deposed leader still serves while its successor commits depends on
# timing: bench/unsafe.py --variants raft-lease-clocks caught seeds 2, 3, 5 and 6 of 1..6; a
# lease run goes through them until one is caught (each catches about two times in three).
LEASE_SEEDS = (2, 3, 5)


@pytest.mark.skipif(clocks.missing() is not None, reason=f"no clock faults: {clocks.missing()}")
@pytest.mark.parametrize("mode", ["lease", "index"])
def test_lease_reads_under_clock_faults_are_caught_and_read_index_is_not(tmp_path, mode):
    provocation = CONFIGURATIONS["raft-lease-clocks"]
    args = [a.replace("=lease", f"={mode}") for a in provocation.args]
    for seed in LEASE_SEEDS if mode == "lease" else LEASE_SEEDS[:1]:
        (tmp_path / str(seed)).mkdir()
        code, run, out = splitbrain_run(tmp_path / str(seed), "--nodes", "5", *args,
                                        "--seed", str(seed))  # fmt: skip
        assert json.loads(run.config.read_text())["node_args"] == [f"--read-mode={mode}"]
        checkers = results(run)["checkers"]
        # Event times are the machine's clock, which the clock faults do not skew: the
        # log-agreement checker's time rules check this run too (raft/machine_clock.py).
        agreement = checkers["log-agreement"]
        assert agreement["commit_safety"].startswith("checked at"), agreement
        assert agreement["read_safety"].startswith("checked"), agreement
        if mode == "index":
            assert code == 0, out
            assert checkers[provocation.checker]["valid"] is True
        elif code == 1:  # by linearizability, or by the read rules that see the deposed leader
            caught = {name for name, c in checkers.items() if c["valid"] is False}
            assert caught and caught <= {provocation.checker, "log-agreement"}, caught
            kinds = {v["kind"] for v in agreement["violations"]}
            assert kinds <= {"read-by-current-leader", "read-sees-applied"}, kinds
            return
        else:
            assert code == 0, out  # not caught on this seed: valid, never unknown or a crash
    assert mode == "index", f"lease reads escaped every seed of {LEASE_SEEDS}"


def test_a_swarm_run_draws_node_knobs_that_reach_the_nodes_and_stays_valid(tmp_path):
    """`--nemesis all` on seed 174 draws a snapshot every 20 entries, AppendEntries of one
    entry each and snapshot chunks of 256 bytes: the run says so, records them, and the nodes
    take them (several snapshots in a run whose default interval, 1000 entries, would allow
    two at most)."""
    code, run, out = splitbrain_run(
        tmp_path, "--nodes", "3", "--time-limit", "8", "--nemesis", "all", "--seed", "174",
        "--rate", "200")
    drawn = ["--snapshot-every=20", "--max-msg-entries=1", "--snapshot-chunk=256"]
    assert code == 0, out
    assert f"knobs drawn from the seed: {' '.join(drawn)}" in out
    assert json.loads(run.config.read_text())["node_args"] == drawn
    taken = Counter(node for node in ("n1", "n2", "n3")
                    for line in run.node_events(node).read_text().splitlines()
                    if (e := json.loads(line))["event"] == "snapshot" and e["kind"] == "taken")
    applied = results(run)["checkers"]["log-agreement"]["committed"]
    assert applied < 3000 and max(taken.values()) >= 3, (applied, taken)


def test_snapshots_are_taken_installed_and_restarted_from_in_a_valid_run(tmp_path):
    """Small --snapshot-every: followers that were down catch up by InstallSnapshot or their
    own snapshot and the log tail, and the checkers compare the snapshots' digests."""
    code, run, out = splitbrain_run(
        tmp_path, "--nodes", "3", "--time-limit", "6", "--nemesis", "kill,partition",
        "--nemesis-interval", "1", "--seed", "3", "--rate", "200",
        "--node-arg=--snapshot-every=20")
    assert code == 0, out
    assert results(run)["checkers"]["log-agreement"]["valid"] is True
    events = [json.loads(line) for node in ("n1", "n2", "n3")
              for line in run.node_events(node).read_text().splitlines()]
    snapshots = [e for e in events if e["event"] == "snapshot"]
    assert {e["kind"] for e in snapshots} >= {"taken"} and len(snapshots) >= 6
    assert any("snapshot" in e for e in events if e["event"] == "recovered"), \
        "a restarted node started from its snapshot"
    for node in ("n1", "n2", "n3"):  # each compacted its log at least once
        assert (run.node_data(node) / "snapshot").is_file()

"""`splitbrain campaign` end to end with real runs: a SIGKILLed campaign leaves no process and
resumes without repeating a finished run; a Dask scheduler and two workers started as separate
processes run a campaign, and a worker killed mid-run loses no run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from splitbrain.cluster.ports import free_ports
from tests.campaign.procs import SPLITBRAIN, Watched

pytestmark = pytest.mark.slow

SHORT_RUN = ["--nemesis", "partition", "--time-limit", "2",
             "--run-arg=--nodes=3", "--run-arg=--nemesis-interval=0.5"]


def outcomes(cdir: Path) -> list[dict]:
    path = cdir / "outcomes.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def test_sigkilled_campaign_leaves_no_process_and_resumes_without_repeats(tmp_path):
    out = tmp_path / "campaigns"
    cmd = [*SPLITBRAIN, "campaign", "--seeds", "3", "--workers", "1", "--out", str(out),
           *SHORT_RUN]
    first = Watched(cmd, tmp_path / "first.log")
    try:
        cdir = out / "latest"
        # one run finished, the next one's nodes are up: kill the driver then
        first.wait_until(lambda: len(outcomes(cdir)) >= 1 and any(
            "node" in p.cmdline() for p in first.poll_children() if _alive(p)),
            120, "no run finished while another was under way")
        finished = outcomes(cdir)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
        assert len(first.seen) >= 5  # a run process, its proxies and 3 nodes at least
        assert first.leftovers() == [], "processes outlived the SIGKILLed campaign"
    finally:
        first.cleanup()
    cdir = cdir.resolve()
    stamps = {o["id"]: (cdir / o["run_dir"] / "history.jsonl").stat().st_mtime_ns
              for o in finished}
    second = Watched([*SPLITBRAIN, "campaign", "--resume", str(out)], tmp_path / "second.log")
    try:
        code = second.finish(150)
        assert code == 0, second.output()
        assert f"3 runs, {3 - len(finished)} to go" in second.output()
        assert second.leftovers() == []
    finally:
        second.cleanup()
    ids = [o["id"] for o in outcomes(cdir)]
    assert sorted(ids) == ["partition-s1", "partition-s2", "partition-s3"]  # none twice
    for o in finished:
        assert (cdir / o["run_dir"] / "history.jsonl").stat().st_mtime_ns == stamps[o["id"]]
    doc = json.loads((cdir / "campaign.json").read_text())
    assert doc["finished"] and [r["verdict"] for r in doc["runs"]] == ["valid"] * 3
    assert len(list((cdir / "runs" / "partition-s2" / "run").iterdir())) == 1  # leftover gone


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_separate_scheduler_and_workers_run_a_campaign_and_a_killed_worker_loses_no_run(
        tmp_path):
    port = free_ports(1)[0]
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "dask"]
    scheduler = Watched([*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                         "--no-dashboard"], tmp_path / "scheduler.log")
    workers = [Watched([*dask, "worker", address, "--nthreads", "1", "--no-nanny",
                        "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}"],
                       tmp_path / f"worker{i}.log") for i in (1, 2)]
    campaign = None
    try:
        for w in workers:
            w.wait_until(lambda w=w: "Registered to" in w.output(), 60, "worker not registered")
        out = tmp_path / "campaigns"
        campaign = Watched([*SPLITBRAIN, "campaign", "--seeds", "4", "--out", str(out),
                            "--scheduler", address, "--transfer", "dask", "--junit",
                            str(tmp_path / "junit.xml"), *SHORT_RUN], tmp_path / "campaign.log")
        # kill a worker while it runs one: its run dies with it and the run goes elsewhere
        victim = workers[0]
        campaign.wait_until(lambda: any(
            "node" in p.cmdline() for p in victim.poll_children() if _alive(p)),
            120, "worker 1 never ran a run")
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(10)
        assert victim.leftovers() == [], "the killed worker's run outlived it"
        code = campaign.finish(240)
        doc = json.loads((out / "latest" / "campaign.json").read_text())
        verdicts = {r["id"]: r["verdict"] for r in doc["runs"]}
        assert sorted(verdicts) == [f"partition-s{s}" for s in range(1, 5)]
        assert "not run" not in verdicts.values(), campaign.output()
        for r in doc["runs"]:
            assert r["verdict"] == "valid" or r["failure_kind"] == "worker-lost", r
            if r["verdict"] == "valid":  # files came back through Dask
                assert (out / "latest" / r["report"]).is_file()
        assert code == (0 if set(verdicts.values()) == {"valid"} else 3), campaign.output()
        assert (tmp_path / "junit.xml").read_text().count("<testcase") == 4
        assert campaign.leftovers() == []
    finally:
        for w in [campaign, *workers, scheduler]:
            if w is not None:
                w.cleanup()


def test_bad_matrix_is_a_usage_error_before_anything_runs(tmp_path):
    out = tmp_path / "campaigns"
    bad = subprocess.run([*SPLITBRAIN, "campaign", "--nemesis", "partition,frob", "--out",
                          str(out)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 64
    assert "nemesis=partition,frob" in bad.stderr and "frob" in bad.stderr
    assert not out.exists()
    toml = tmp_path / "m.toml"
    toml.write_text('seeds = 2\n[matrix]\nnemesis = ["kill"]\nworklaod = ["kv"]\n')
    bad = subprocess.run([*SPLITBRAIN, "campaign", str(toml), "--out", str(out)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 64 and "worklaod" in bad.stderr and "Traceback" not in bad.stderr

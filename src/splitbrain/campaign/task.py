"""One campaign run, as a task on a Dask worker: launch the run command, read its outcome,
bring its files back.

Rules it keeps:
- Each run is its own `splitbrain <mode>` process with its own output directory; it picks free
  ports itself (cluster/ports.py), so runs on one machine do not collide.
- The run process dies with the worker: it is forked by the task's thread, which waits for it,
  and gets the parent-death signal (the same mechanism the run uses for its nodes, which die
  with the run through their lifeline). A worker killed mid-run leaves no process behind.
- A run that overstays `run_timeout` gets SIGTERM (it tears its cluster down), then SIGKILL.
- Files come back cheaply when they can: a worker that sees the campaign directory (it reads
  the campaign's token there) writes the run in place. Otherwise the run is written to the
  worker's scratch space and sent back through Dask as a gzipped tar, which the driver unpacks
  with tarfile's "data" filter (nothing lands outside runs/). Node files are kept only when the
  run did not pass or when asked; a valid run's report is re-rendered without them.
"""

from __future__ import annotations

import io
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from splitbrain.campaign.directory import RUN_NAME
from splitbrain.campaign.matrix import RunSpec
from splitbrain.campaign.outcome import RunOutcome, read_outcome
from splitbrain.cluster.lifeline import set_parent_death_signal
from splitbrain.store import RunDir

RUN_SLACK = 300.0  # seconds a run may take beyond twice its time limit: start, recovery, check
STOP_GRACE = 20.0  # seconds a run gets to tear down after SIGTERM before SIGKILL

# (splitbrain arguments, console log, timeout) -> exit code, or None if it overstayed
Launcher = Callable[[list[str], Path, float], int | None]

_active: set[subprocess.Popen] = set()
_active_lock = threading.Lock()


@dataclass(frozen=True)
class Place:
    """Where the campaign lives, as the driver sees it; sent with every task."""

    campaign: str  # the campaign directory on the driver's machine
    token: str  # the word in its .token file
    transfer: str = "auto"  # "auto": in place when the worker shares the filesystem; "dask"
    keep_nodes: bool = False  # keep node files of valid runs too


@dataclass(frozen=True)
class Delivery:
    outcome: RunOutcome
    files: bytes | None = None  # gzipped tar of runs/<id>/, when not written in place


def run_timeout(spec: RunSpec) -> float:
    return 2 * spec.time_limit + RUN_SLACK


def launch(args: list[str], console: Path, timeout: float) -> int | None:
    """Run `splitbrain ARGS` to its end; its output goes to `console`."""
    with console.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "splitbrain", *args],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=set_parent_death_signal, process_group=0)
    with _active_lock:
        _active.add(proc)
    try:
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _stop(proc)
            return None
    finally:
        with _active_lock:
            _active.discard(proc)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM (the run tears its cluster down), then SIGKILL; reaped either way."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stop_active() -> int:
    """Stop every run this process launched (the driver's local workers on Ctrl-C)."""
    with _active_lock:
        procs = list(_active)
    threads = [threading.Thread(target=_stop, args=(p,)) for p in procs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(procs)


def execute(spec: RunSpec, place: Place, launcher: Launcher | None = None) -> Delivery:
    """Run one spec to its outcome (the Dask task). Never raises for a run that failed."""
    if _shares(place):
        root = Path(place.campaign)
        return Delivery(run_in(spec, root / "runs" / spec.id, root, launcher, place.keep_nodes))
    scratch = Path(tempfile.mkdtemp(prefix="splitbrain-run-", dir=_scratch_dir()))
    try:
        out = scratch / "runs" / spec.id
        outcome = run_in(spec, out, scratch, launcher, place.keep_nodes)
        return Delivery(outcome, pack(out))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_in(spec: RunSpec, out: Path, root: Path, launcher: Launcher | None = None,
           keep_nodes: bool = False) -> RunOutcome:
    """Run `spec` writing into out/ (console.log, and run/<timestamp>/, the run directory);
    paths in the outcome are relative to `root`. What a killed attempt left there goes first."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    console = out / "console.log"
    started = time.monotonic()
    code = (launcher or launch)(spec.argv(out, RUN_NAME), console, run_timeout(spec))
    duration = time.monotonic() - started
    run_dir = _run_dir(out)
    rel = run_dir.relative_to(root).as_posix() if run_dir else None
    outcome = read_outcome(spec, code, run_dir, rel, duration, _tail(console),
                           worker=_worker_name())
    if run_dir is not None and outcome.verdict == "valid" and not keep_nodes:
        _drop_nodes(run_dir)
    return outcome


def _shares(place: Place) -> bool:
    if place.transfer != "auto":
        return False
    try:
        return (Path(place.campaign) / ".token").read_text(encoding="utf-8").strip() == place.token
    except OSError:
        return False


def _scratch_dir() -> str | None:
    try:
        from distributed import get_worker

        return get_worker().local_directory  # the worker cleans it up, even after a crash
    except (ImportError, ValueError):
        return None


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "local"


def _run_dir(out: Path) -> Path | None:
    """The run directory the command created: out/run/<timestamp>/ (the newest)."""
    found = sorted(p for p in (out / RUN_NAME).glob("*") if p.is_dir() and not p.is_symlink())
    return found[-1] if found else None


def _tail(console: Path, lines: int = 2) -> str:
    try:
        text = console.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])[:500]


def _drop_nodes(run_dir: Path) -> None:
    """Delete a valid run's node files and re-render its report so it links only what is left."""
    from splitbrain.reports import render_report

    shutil.rmtree(run_dir / "nodes", ignore_errors=True)
    render_report(RunDir(run_dir))


def pack(out: Path) -> bytes:
    """runs/<id>/ as a gzipped tar (zero-filled WAL preallocation compresses to almost nothing)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        tar.add(out, arcname=out.name)
    return buffer.getvalue()


def unpack(files: bytes, runs: Path) -> None:
    """Extract a packed run under runs/; the "data" filter refuses anything that would land
    outside it (absolute names, .., links out)."""
    with tarfile.open(fileobj=io.BytesIO(files), mode="r:gz") as tar:
        tar.extractall(runs, filter="data")

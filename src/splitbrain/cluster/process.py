"""Child processes of the driver: spawn so they die with it, signal them, reap them with psutil.

Rules: every child gets the lifeline fd and PR_SET_PDEATHSIG (so a SIGKILLed driver leaves no
orphan) and its own process group (so a terminal's Ctrl-C reaches only the driver, which then
tears down in order). Spawning happens on the calling thread — call from the event loop's
(main) thread: the parent-death signal fires when the *thread* that forked exits. A node's
stdout and stderr are appended to nodes/<node>/output.log so a crash leaves its traceback.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path

import psutil

from splitbrain.cluster.lifeline import Lifeline, set_parent_death_signal
from splitbrain.cluster.nsenter import enter_netns

POLL = 0.01  # seconds between checks of a child's state; children change state in ms


class NodeError(RuntimeError):
    """A node did not start, or died while starting; the message names it and quotes its output.
    `refused`: the node ended by itself while starting (an exit status, not a signal), having
    judged that it could not serve, e.g. on files it could not recover from."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


def spawn(
    argv: Sequence[str],
    lifeline: Lifeline,
    *,
    pass_fds: Iterable[int] = (),
    output: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    netns: Path | None = None,
    death_signal: int = signal.SIGKILL,
) -> psutil.Popen:
    """Start a child that dies with the driver; `env` is added to the driver's environment,
    `netns` is a network namespace (a /run/netns file) the child runs in."""

    def prepare() -> None:
        if death_signal != signal.SIGKILL:
            # A catchable death signal stays pending until the child has its handler (it
            # unblocks it then): a driver that dies while the child starts cannot kill it first.
            signal.pthread_sigmask(signal.SIG_BLOCK, {death_signal})
        set_parent_death_signal(death_signal)
        if netns is not None:
            enter_netns(netns)

    out = output.open("ab") if output is not None else None
    try:
        return psutil.Popen(
            list(argv),
            stdin=None,
            stdout=out,
            stderr=out,
            pass_fds=(lifeline.fd, *pass_fds),
            preexec_fn=prepare,
            process_group=0,
            env={**os.environ, **env} if env else None,
            cwd=cwd,
        )
    finally:
        if out is not None:
            out.close()


def running(proc: psutil.Popen | None) -> bool:
    """Is the process still there (not exited)? Reaps it if it has exited."""
    return proc is not None and proc.poll() is None


async def reap(proc: psutil.Popen, timeout: float) -> bool:
    """Wait, without blocking the loop, until `proc` has exited and is reaped."""
    deadline = asyncio.get_running_loop().time() + timeout
    while proc.poll() is None:
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(POLL)
    return True


async def wait_stopped(proc: psutil.Popen, stopped: bool, timeout: float = 5.0) -> bool:
    """Signals are delivered asynchronously: wait until the kernel shows the process stopped
    (or not), so that "paused" means paused. False if it exited or the time ran out."""
    deadline = asyncio.get_running_loop().time() + timeout
    while proc.poll() is None and asyncio.get_running_loop().time() < deadline:
        try:
            if (proc.status() == psutil.STATUS_STOPPED) == stopped:
                return True
        except psutil.NoSuchProcess:
            return False
        await asyncio.sleep(POLL / 5)
    return False


def signal_proc(proc: psutil.Popen, sig: int) -> bool:
    """Send `sig` if the process is still running; False if it was already gone."""
    if proc.poll() is not None:
        return False
    try:
        proc.send_signal(sig)
    except (psutil.NoSuchProcess, ProcessLookupError):
        return False
    return True


def stop_all(procs: Iterable[psutil.Popen], grace: float = 2.0) -> None:
    """Teardown, synchronous so a second Ctrl-C or a cancellation cannot cut it short.

    Stopped processes are continued (a SIGSTOPped process cannot act on SIGTERM), everyone gets
    SIGTERM and `grace` seconds, then SIGKILL; all are reaped.
    """
    procs = [p for p in procs if p.poll() is None]
    for p in procs:
        signal_proc(p, signal.SIGCONT)
        signal_proc(p, signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for p in alive:
        signal_proc(p, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=10)


async def wait_ready(
    proc: psutil.Popen, ready: Callable[[], Awaitable[bool]], timeout: float, name: str,
    output: Path | None,
) -> None:
    """Poll `ready()` until it says yes; NodeError if the process exits or the time runs out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await ready():
        if proc.poll() is not None:
            raise NodeError(f"{name} exited with {proc.returncode} while starting"
                            f"{output_tail(output)}", refused=proc.returncode >= 0)
        if loop.time() > deadline:
            raise NodeError(f"{name} was not up within {timeout}s{output_tail(output)}")
        await asyncio.sleep(POLL * 2)
    if proc.poll() is not None:  # something else answered for it
        raise NodeError(f"{name} exited with {proc.returncode} while starting{output_tail(output)}")


def output_tail(path: Path | None, lines: int = 5) -> str:
    """The last `lines` lines of a node's output, as a parenthesized suffix for a message."""
    if path is None or not path.is_file():
        return ""
    text = path.read_text(errors="replace").strip().splitlines()[-lines:]
    return f" ({path}: {' | '.join(text)})" if text else f" ({path} is empty)"


def gone(pid: int) -> bool:
    """Has `pid` exited? A zombie counts as gone: it runs nothing, only its parent can reap it."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True

"""Clock faults through libfaketime: a node whose clock runs slower or faster than the others.

    env = clocks.environment(control)      # added to the node's environment at every start
    clocks.write(control, 0.25)            # from now on its clock runs at a quarter speed

A node started with `environment(control)` has Debian's libfaketime preloaded: every clock it
reads through libc (CLOCK_REALTIME and CLOCK_MONOTONIC, so Python's time.time, time.monotonic
and the asyncio loop) and every timed wait (sleep, poll, epoll_wait) follows the rate written in
its control file, re-read at most CACHE_SECONDS after a change. A rate change is smoothed
(FAKETIME_XRESET): the clock runs at the new rate from the change on, it never jumps. At rate
0.25 a node's timers fire four times later in real time: a leader heartbeats late and steps
down late (its check-quorum interval stretches), a follower times out late; at rate 4 a
follower starts elections early. Timing assumptions across nodes — leases, check-quorum
leadership — break exactly as they do under drifting clocks.

Rules it keeps:
- Only programs that read time through libc are reached: a Go binary (etcd) reads the vDSO
  directly, so targets declare the `clock` capability themselves.
- No shared memory (FAKETIME_DISABLE_SHM): a SIGKILLed node leaves nothing in /dev/shm.
- The control file is replaced atomically (write, then rename), so a node never reads half.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

PACKAGE = "faketime"  # the Debian package that installs libfaketime
_CANDIDATES = ("/usr/lib/*/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1",
               "/usr/local/lib/faketime/libfaketime.so.1")  # fmt: skip
CACHE_SECONDS = 1  # how long a node keeps a rate before it reads its control file again
NORMAL = 1.0


def library() -> str | None:
    """The path of libfaketime.so.1, or None if it is not installed."""
    for pattern in _CANDIDATES:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def missing() -> str | None:
    """Why clock faults cannot run here, or None."""
    if library() is None:
        return f"libfaketime is not installed (Debian package {PACKAGE})"
    return None


def spec(rate: float) -> str:
    """libfaketime's setting for a clock running at `rate` (no offset): '+0 x0.25'."""
    if not rate > 0:
        raise ValueError(f"a clock rate must be positive, got {rate}")
    return f"+0 x{rate:g}"


def write(control: Path, rate: float = NORMAL) -> None:
    """Set the rate of the node whose control file this is (atomically)."""
    tmp = control.with_name(control.name + ".tmp")
    tmp.write_text(spec(rate) + "\n", encoding="ascii")
    os.replace(tmp, control)


def environment(control: Path) -> dict[str, str]:
    """What a node's environment gains so that `control` sets its clock; writes the normal
    rate first if the file does not exist yet. LD_PRELOAD keeps what the driver had."""
    lib = library()
    if lib is None:
        raise RuntimeError(missing())
    if not control.exists():
        write(control)
    preload = " ".join(p for p in (lib, os.environ.get("LD_PRELOAD", "")) if p)
    return {
        "LD_PRELOAD": preload,
        "FAKETIME_TIMESTAMP_FILE": str(control),
        "FAKETIME_CACHE_DURATION": str(CACHE_SECONDS),
        "FAKETIME_XRESET": "1",
        "FAKETIME_DISABLE_SHM": "1",
    }

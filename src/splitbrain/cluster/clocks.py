"""Clock faults through libfaketime: a node's clock runs slow or fast, jumps, or strobes.

    env, start = clocks.environment(control, skew)   # the node's environment at every start
    skew = clocks.change(skew, time.time(), rate=0.25)   # from the next second on: a quarter
    clocks.write(control, skew, start)                   # speed (start: when the node started)

A node's clock is a function of real time chosen by the driver (`Skew`): it reads `value` at
real time `anchor` and advances `rate` seconds per real second. A node started with
`environment(...)` has Debian's libfaketime preloaded: every clock it reads through libc
(CLOCK_REALTIME and CLOCK_MONOTONIC alike, so Python's time.time, time.monotonic and the asyncio
loop) and every timed wait (sleep, poll, epoll_wait) follows the setting in its control file.

What libfaketime does, measured (tests/cluster/test_clocks.py probes it): a setting "+O xR"
makes a process read S + O + R*(t - S) at real time t, S being the real time its library
started (the process's start; a restart starts it again). Monotonic readings move the same
way, offsets and rate included: a jump back stalls the node's timers as long. With
FAKETIME_CACHE_DURATION=0 a process rereads the file at its first clock reading after each
whole real second. So every change is anchored at the next whole second (`change`), where the
old and the new function agree: a rate change is continuous, and only a jump jumps.
FAKETIME_XRESET, which smooths rate changes by itself, would ignore the offsets: not used.
`spec` writes the function relative to the node's start, which the driver knows to within the
few milliseconds a process takes to load the library (an error of (1 - rate) times that).

Rules it keeps:
- Only programs that read time through libc are reached: a Go binary (etcd) reads the vDSO
  directly, so targets declare the `clock` capability themselves.
- No shared memory (FAKETIME_DISABLE_SHM): a SIGKILLed node leaves nothing in /dev/shm.
- The control file is replaced atomically (write, then rename), so a node never reads half.
- What libfaketime skews is the node's own clock, never its event times: the bundled Raft
  stamps those by the clock_gettime system call (raft/machine_clock.py), and `syscall_faked`
  probes once that this library lets the call through.
"""

from __future__ import annotations

import functools
import glob
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from splitbrain.raft import machine_clock

PACKAGE = "faketime"  # the Debian package that installs libfaketime
_CANDIDATES = ("/usr/lib/*/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1",
               "/usr/local/lib/faketime/libfaketime.so.1")  # fmt: skip
NORMAL = 1.0
# A change written this close to a whole second may be read after it: anchor one second later.
_MARGIN = 0.05
PROBE_TIMEOUT = 30  # seconds for the probe of syscall_faked


@dataclass(frozen=True, slots=True)
class Skew:
    """A node's clock: it reads `value` at real time `anchor` (Unix seconds) and runs at
    `rate`. `shift` is what jumps have added and not taken back (offset and strobe faults)."""

    anchor: float = 0.0
    value: float = 0.0
    rate: float = NORMAL
    shift: float = 0.0

    def at(self, t: float) -> float:
        """The node's clock at real time t."""
        return self.value + self.rate * (t - self.anchor)

    def real(self, reading: float) -> float:
        """The real time at which the node's clock reads `reading`."""
        return self.anchor + (reading - self.value) / self.rate

    def moved(self, at: float, rate: float | None = None, jump: float = 0.0) -> Skew:
        """This clock with a new rate and/or a jump of `jump` seconds from real time `at` on
        (the same as before up to `at`)."""
        if rate is not None and not rate > 0:
            raise ValueError(f"a clock rate must be positive, got {rate}")
        return replace(self, anchor=at, value=self.at(at) + jump,
                       rate=self.rate if rate is None else rate, shift=self.shift + jump)

    @property
    def normal(self) -> bool:
        return self.rate == NORMAL and self.shift == 0.0


def change(skew: Skew, now: float, rate: float | None = None, jump: float = 0.0) -> Skew:
    """`skew` with a new rate and/or a jump of `jump` seconds, taking effect at the first whole
    second after `now` (when the node rereads its control file)."""
    return skew.moved(math.floor(now + _MARGIN) + 1.0, rate, jump)


def spec(skew: Skew, start: float) -> str:
    """libfaketime's setting for `skew` in a process that started at real time `start`:
    '+O xR' with S + O + R*(t - S) = skew.at(t)."""
    offset = (skew.value - start) - skew.rate * (skew.anchor - start)
    return f"{offset:+.6f} x{skew.rate:.6g}"


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


@functools.cache
def syscall_faked() -> bool:
    """Does this libfaketime skew the clock nodes stamp their events with (a build that
    intercepts syscall(2): raft/machine_clock.py)? Probed once per process: a child set a day
    back reads it. True also when the probe cannot tell (nodes then say their events may be
    skewed, and the time rules skip the run rather than compare skewed times)."""
    lib = library()
    if lib is None:
        return False
    code = "from splitbrain.raft import machine_clock as m; print(m.now_ns() if m.UNSKEWED else 0)"
    env = {**os.environ, "LD_PRELOAD": lib, "FAKETIME": "-1d", "FAKETIME_DISABLE_SHM": "1"}
    try:
        probe = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                               text=True, timeout=PROBE_TIMEOUT, check=True)  # fmt: skip
        reading = int(probe.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return True
    return abs(reading - time.time_ns()) > PROBE_TIMEOUT * 10**9


def write(control: Path, skew: Skew, start: float) -> None:
    """Set the clock of the node (started at `start`) whose control file this is, atomically."""
    tmp = control.with_name(control.name + ".tmp")
    tmp.write_text(spec(skew, start) + "\n", encoding="ascii")
    os.replace(tmp, control)


def environment(control: Path, skew: Skew) -> tuple[dict[str, str], float]:
    """What a node's environment gains so that `control` sets its clock, and the real time to
    take as its start: the setting is written for a process started then, so start it at once
    (the probe of `syscall_faked`, the first time, comes before: a start taken earlier would
    be off by the probe's time, times (rate - 1)). LD_PRELOAD keeps what the driver had."""
    lib = library()
    if lib is None:
        raise RuntimeError(missing())
    faked = syscall_faked()
    start = time.time()
    write(control, skew, start)
    preload = " ".join(p for p in (lib, os.environ.get("LD_PRELOAD", "")) if p)
    env = {
        "LD_PRELOAD": preload,
        "FAKETIME_TIMESTAMP_FILE": str(control),
        "FAKETIME_CACHE_DURATION": "0",  # reread at each whole second (see the docstring)
        "FAKETIME_DISABLE_SHM": "1",
    }
    if faked:
        env[machine_clock.ENV] = "libc"
    return env, start

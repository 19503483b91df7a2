"""The machine's wall clock, read from the kernel itself: what a node stamps its events with.

The clock fault (cluster/clocks.py) preloads libfaketime into a node, which replaces the C
library's clock functions: `time.time_ns()` there reads the node's skewed clock. Event times
must not be skewed. The log-agreement checker compares them across nodes
(checker/commit_safety.py, checker/read_safety.py), and the report lays them beside the
history, whose times are the driver's. So a node reads CLOCK_REALTIME with the clock_gettime
system call made through syscall(2), which libfaketime as Debian builds it passes through
(tests/cluster/test_clocks.py probes it). A build that fakes it too is caught before a run
with clock faults starts (`clocks.syscall_faked`): its nodes are started with
`SPLITBRAIN_EVENT_CLOCK=libc` and stamp their events with the C library's clock, saying so.

Without libfaketime the C library's clock is the machine's, and `now_ns` is `time.time_ns`.
`UNSKEWED` says whether `now_ns` reads the machine's clock: False under libfaketime where the
system call's number is unknown (not Linux on x86-64 or arm64) or the environment asks for the
C library's clock. The node's `start` event tells the checker which (`"clock": "machine"`);
the time rules check a run with clock faults only if every life of every node says "machine".
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import sys
import time
from collections.abc import Callable

# clock_gettime's number in the system call table, per machine (asm/unistd.h).
_CLOCK_GETTIME = {"x86_64": 228, "aarch64": 113, "arm64": 113}
ENV = "SPLITBRAIN_EVENT_CLOCK"  # "libc": stamp events with the C library's clock


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _kernel_clock() -> Callable[[], int] | None:
    """A function reading CLOCK_REALTIME by the system call, or None where it cannot."""
    number = _CLOCK_GETTIME.get(platform.machine())
    if number is None or not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        syscall = libc.syscall
    except (OSError, AttributeError):
        return None
    realtime = time.CLOCK_REALTIME

    def now_ns() -> int:
        spec = _Timespec()  # one per call: any thread may stamp an event
        if syscall(number, realtime, ctypes.byref(spec)) != 0:
            return time.time_ns()
        return spec.tv_sec * 1_000_000_000 + spec.tv_nsec

    return now_ns if now_ns() > 0 else None


def _choose() -> tuple[Callable[[], int], bool]:
    if "faketime" not in os.environ.get("LD_PRELOAD", ""):
        return time.time_ns, True  # the C library's clock is the machine's (and 30 times faster)
    kernel = None if os.environ.get(ENV) == "libc" else _kernel_clock()
    return (time.time_ns, False) if kernel is None else (kernel, True)


now_ns, UNSKEWED = _choose()

"""Children die with the driver: a lifeline pipe plus the kernel's parent-death signal.

The driver keeps the write end of a pipe open for its whole life and never writes to it; every
child inherits the read end. When the driver dies for any reason (even SIGKILL) the kernel closes
the write end, the child's read returns EOF, and the child exits. `PR_SET_PDEATHSIG` is a second,
immediate line of defence on Linux (it fires when the parent thread dies).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import threading

_PR_SET_PDEATHSIG = 1


class Lifeline:
    """The driver's side: a pipe whose read end children inherit (pass `fd` to them)."""

    def __init__(self) -> None:
        self.fd, self._write_fd = os.pipe()
        os.set_inheritable(self.fd, True)

    def close(self) -> None:
        for fd in (self.fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


def set_parent_death_signal(sig: int = signal.SIGKILL) -> None:
    """In a child (e.g. a Popen preexec_fn): ask the kernel to send `sig` when the parent dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the lifeline pipe still works
        pass


def watch_lifeline(fd: int) -> None:
    """In a child: exit at once when the driver's end of the lifeline closes."""

    def wait() -> None:
        try:
            while os.read(fd, 1):
                pass
        except OSError:
            pass
        os._exit(70)  # the driver is gone: no cleanup could be trusted to finish

    threading.Thread(target=wait, name="lifeline", daemon=True).start()

"""Entering a network namespace: a child before it execs, or the driver's thread for a run.

setns(2) moves only the calling thread; sockets keep the namespace they were created in, and
threads and children inherit the namespace of the thread that creates them. So a child calls
`enter_netns` between fork and exec (spawn's preexec), and the driver enters the run's bridge
namespace with `EnteredNetns` around the part of the run that talks to nodes, then leaves it.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def enter_netns(path: Path) -> None:
    """Move the calling thread into the network namespace bound at `path` (/run/netns/NAME)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(fd)
    finally:
        os.close(fd)


class EnteredNetns:
    """The calling thread inside a namespace until `leave()` (idempotent) takes it home."""

    def __init__(self, path: Path) -> None:
        self._home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            enter_netns(path)
        except BaseException:
            os.close(self._home)
            raise

    def leave(self) -> None:
        if self._home < 0:
            return
        try:
            _setns(self._home)
        finally:
            os.close(self._home)
            self._home = -1

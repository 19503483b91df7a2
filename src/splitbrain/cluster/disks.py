"""The driver's side of disk faults: one forgetful FUSE mount per node (diskfs.py), and sweeping.

    disks = await Disks.start({"n1": NodeDisk(mountpoint, tree, lost), ...}, lifeline)
    await disks.power_loss("n1")        # after a kill -9: forget what n1 never synced
    await disks.set_full("n1", True)    # ENOSPC until set_full("n1", False)
    disks.close()                       # unmount all (synchronous, idempotent)

Rules it keeps:
- A node's data directory (nodes/<node>/data) is the mountpoint; its files live in
  nodes/<node>/disk (the tree) and, while removed but not yet durably so, nodes/<node>/disk.lost.
  After the run, a node's files are in nodes/<node>/disk.
- Never a mount left behind. Each daemon unmounts itself when its control channel closes (the
  driver closed it, or died: even a SIGKILLed driver's end of the socket closes) or on SIGTERM
  (its parent-death signal). A daemon that was itself SIGKILLed leaves a dead mount: `sweep()`
  unmounts every mount of ours whose daemon is gone; each run with disks sweeps before it
  starts, and so does `splitbrain clean`.
- `missing()` says why this machine cannot mount them (no /dev/fuse, no pyfuse3), before a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib.util
import os
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from splitbrain.cluster.channel import Channel
from splitbrain.cluster.lifeline import Lifeline
from splitbrain.cluster.process import spawn, stop_all

FSNAME = "splitbrain-disk"  # a mount's source is "splitbrain-disk:<daemon pid>"
SUBTYPE = "splitbrain"  # its type is fuse.splitbrain
START_TIMEOUT = 10.0  # seconds for a daemon to mount (a cold Python start on a loaded machine)
REQUEST_TIMEOUT = 30.0  # a power loss writes back at most a few MiB
MOUNTINFO = Path("/proc/self/mountinfo")
_MNT_DETACH = 2


class DiskError(RuntimeError):
    """A disk daemon did not start or did not answer (the message names the node)."""


def missing() -> str | None:
    """Why this machine cannot run disk faults, or None."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse does not exist (FUSE is not available in this kernel or container)"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "/dev/fuse is not readable and writable by this user"
    if importlib.util.find_spec("pyfuse3") is None:
        return ("the Python package pyfuse3 is not installed (pip install pyfuse3; it builds "
                "against Debian's libfuse3-dev, with pkg-config)")
    return None


@dataclass(frozen=True, slots=True)
class NodeDisk:
    """Where one node's disk is mounted and kept."""

    mountpoint: Path
    tree: Path
    lost: Path

    @classmethod
    def under(cls, node_dir: Path, data: Path) -> NodeDisk:
        return cls(data, node_dir / "disk", node_dir / "disk.lost")


class _Daemon:
    def __init__(self, name: str, disk: NodeDisk, proc: psutil.Popen,
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:  # fmt: skip
        self.name, self.disk, self.proc = name, disk, proc
        self.channel = Channel(f"{name}'s disk daemon", proc, reader, writer, DiskError,
                               REQUEST_TIMEOUT)

    async def request(self, request: dict[str, Any]) -> dict[str, Any]:
        reply = await self.channel.request(request)
        if not reply.pop("ok"):
            raise DiskError(f"{self.name}'s disk refused {request['op']!r}: {reply['error']}")
        return reply


class Disks:
    def __init__(self) -> None:
        self._daemons: dict[str, _Daemon] = {}

    @classmethod
    async def start(cls, disks: Mapping[str, NodeDisk], lifeline: Lifeline,
                    output: Mapping[str, Path] | None = None) -> Disks:  # fmt: skip
        """Mount every node's disk; DiskError (everything unmounted again) if one fails.
        `output`: where each daemon's stdout and stderr go."""
        sweep()
        self = cls()
        try:
            for name, disk in disks.items():
                for d in (disk.mountpoint, disk.tree, disk.lost):
                    d.mkdir(parents=True, exist_ok=True, mode=0o700)
                self._daemons[name] = await _spawn(name, disk, lifeline,
                                                   (output or {}).get(name))  # fmt: skip
        except BaseException:
            self.close()
            raise
        return self

    async def power_loss(self, name: str) -> dict[str, int]:
        """Forget every write and entry change of the node's disk since its syncs: call it once
        the node is dead. Returns what was forgotten: files, bytes, entries."""
        return await self._daemons[name].request({"op": "power-loss"})

    async def set_full(self, name: str, on: bool) -> None:
        await self._daemons[name].request({"op": "full", "on": on})

    def pids(self) -> dict[str, int]:
        return {n: d.proc.pid for n, d in self._daemons.items()}

    def close(self) -> None:
        """Synchronous: closing the channels tells every daemon to unmount and exit; then they
        are reaped, and a mount still there is detached."""
        daemons = list(self._daemons.values())
        self._daemons.clear()
        for d in daemons:
            # Shut the socket now: a transport closes it only when the loop runs again.
            with contextlib.suppress(OSError):
                d.channel.writer.get_extra_info("socket").shutdown(socket.SHUT_RDWR)
            d.channel.writer.close()
        for d in daemons:
            with contextlib.suppress(psutil.TimeoutExpired):
                d.proc.wait(timeout=5.0)
        stop_all([d.proc for d in daemons], grace=2.0)
        for d in daemons:
            if is_mounted(d.disk.mountpoint):
                unmount(d.disk.mountpoint)


def daemon_command(disk: NodeDisk, control_fd: int) -> list[str]:
    """The command line of the daemon that mounts `disk`, answering on the socket `control_fd`;
    spawn it with SIGTERM as its death signal."""
    return [sys.executable, "-m", "splitbrain.cluster.diskfs", "--tree", str(disk.tree),
            "--lost", str(disk.lost), "--mountpoint", str(disk.mountpoint),
            "--control-fd", str(control_fd)]  # fmt: skip


async def _spawn(name: str, disk: NodeDisk, lifeline: Lifeline, output: Path | None) -> _Daemon:
    ours, theirs = socket.socketpair()
    try:
        proc = spawn(daemon_command(disk, theirs.fileno()), lifeline, pass_fds=(theirs.fileno(),),
                     output=output, death_signal=signal.SIGTERM)  # fmt: skip
    finally:
        theirs.close()
    reader, writer = await asyncio.open_unix_connection(sock=ours)
    daemon = _Daemon(name, disk, proc, reader, writer)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    while not is_mounted(disk.mountpoint):
        if proc.poll() is not None or loop.time() > deadline:
            writer.close()
            stop_all([proc], grace=1.0)
            why = f"exited with {proc.returncode}" if proc.returncode is not None else (
                f"did not mount within {START_TIMEOUT} s")
            raise DiskError(f"{name}'s disk daemon {why}" + (f" (see {output})" if output else ""))
        await asyncio.sleep(0.01)
    return daemon


# Mounts of ours, and sweeping those whose daemon is gone.


@dataclass(frozen=True, slots=True)
class Mount:
    mountpoint: Path
    pid: int | None  # the daemon that serves it


def mounts() -> list[Mount]:
    """The mounts of our filesystem in this mount namespace."""
    out = []
    try:
        lines = MOUNTINFO.read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split(" ")
        try:
            sep = fields.index("-")
        except ValueError:
            continue
        fstype, source = fields[sep + 1], fields[sep + 2]
        if fstype != f"fuse.{SUBTYPE}" or not source.startswith(FSNAME + ":"):
            continue
        pid = source.removeprefix(FSNAME + ":")
        out.append(Mount(Path(_unescape(fields[4])), int(pid) if pid.isdigit() else None))
    return out


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field


def is_mounted(path: Path) -> bool:
    return any(m.mountpoint == Path(os.path.abspath(path)) for m in mounts())


def daemon_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and "splitbrain.cluster.diskfs" in (
            " ".join(proc.cmdline()))
    except psutil.Error:
        return False


def unmount(path: Path) -> None:
    """Detach the mount at `path` (lazily: a process with a file open there cannot block it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(os.fsencode(path), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"cannot unmount {path}: {os.strerror(err)}")


def sweep() -> list[Path]:
    """Unmount every mount of ours whose daemon is gone; returns their mountpoints. A mount
    whose daemon lives belongs to a run in progress (or unmounts itself as its driver dies)."""
    swept = []
    for mount in mounts():
        if not daemon_alive(mount.pid):
            with contextlib.suppress(OSError):
                unmount(mount.mountpoint)
                swept.append(mount.mountpoint)
    return swept

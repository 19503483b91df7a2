"""What a node of the bundled Raft takes from the machine it runs on: files, clock, rng, death.

A real node (`splitbrain node`) runs on the operating system: `NodeHost()` gives it os calls,
the wall clock, an rng seeded from its pid and the time, and SIGKILL of its own process. The
simulator (splitbrain.sim) runs the very same Server code on a simulated machine by passing
another NodeHost: a simulated disk, a virtual clock, a seeded rng, a "die" that ends the
simulated process, and an observer of sim-only invariants. Rules it keeps:

- Everything a node does to its disk goes through `FileSystem` (the WAL) or `FileSystem.append`
  (events), so the simulator decides what survives a kill -9 (the page cache) or a power loss
  (only what was fsynced).
- `die()` never returns: like SIGKILL, nothing the node would do after it happens.
- The real implementations are the os calls the node made before this interface existed, one
  method call away: the real path is as fast as before.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NoReturn, Protocol

from splitbrain.raft import machine_clock
from splitbrain.raft.messages import Entry, HardState, Message


class File(Protocol):
    """An open file of fixed identity, read whole and written at offsets (the WAL's needs)."""

    def read(self) -> bytes: ...  # the whole content
    def pwrite(self, data: bytes | memoryview, offset: int) -> int: ...  # bytes written
    def fsync(self) -> None: ...  # data and metadata durable
    def fdatasync(self) -> None: ...  # data durable
    def truncate(self, size: int) -> None: ...  # cut or extend (zeros) to `size`, at once
    def close(self) -> None: ...


class FileSystem(Protocol):
    def open(self, path: Path) -> File: ...  # read-write, created if missing
    def mkdir(self, path: Path) -> None: ...  # with parents; fine if it exists
    def sync_dir(self, path: Path) -> None: ...  # make the directory's entries durable
    def rename(self, src: Path, dst: Path) -> None: ...  # atomically replaces dst
    def remove(self, path: Path) -> None: ...  # fine if it does not exist
    def exists(self, path: Path) -> bool: ...
    def append(self, path: Path) -> IO[str]: ...  # a text file opened for appending


class Observer(Protocol):
    """Sees what only a simulator can check (sim/invariants.py); None on real nodes."""

    def recovered(self, node: str, hard_state: HardState, entries: Sequence[Entry],
                  snapshot: int) -> None: ...  # entries: after the snapshot's index
    def promised(self, node: str, msg: Message) -> None: ...  # an append ack or vote leaves
    def leading(self, node: str, term: int, term_at: Callable[[int], int | None]) -> None: ...
    def committing(self, node: str, commit: int,
                   leader: bool) -> None: ...  # a Ready's commit index, before it is acted on
    def applying(self, node: str, entries: Sequence[Entry]) -> None: ...  # before applying


def write_all(file: File, data: bytes) -> None:
    """Write `data` at the start of `file`, however many pwrites that takes."""
    view = memoryview(data)
    at = 0
    while at < len(data):
        at += file.pwrite(view[at:], at)


def tmp_path(path: Path) -> Path:
    """Where `replace_file` writes `path`'s new contents before the rename (a crash may leave
    it behind: removed at the next start)."""
    return path.with_name(path.name + ".tmp")


def replace_file(files: FileSystem, path: Path, data: bytes, *, fsync: bool) -> File:
    """Replace `path` with `data` atomically and durably: written to `tmp_path(path)` (a
    crash's leftover removed first), fsynced, renamed over `path`, the directory fsynced.
    Returns the new file, open (the caller closes it)."""
    tmp = tmp_path(path)
    files.remove(tmp)  # a crash's leftover may be longer than what we write
    file = files.open(tmp)
    try:
        write_all(file, data)
        if fsync:
            file.fsync()
        files.rename(tmp, path)
    except BaseException:
        file.close()
        raise
    if fsync:
        files.sync_dir(path.parent)
    return file


class _OsFile:
    def __init__(self, fd: int) -> None:
        self._fd = fd

    def read(self) -> bytes:
        with open(self._fd, "rb", closefd=False) as f:
            f.seek(0)  # from the start, wherever an earlier read left the descriptor
            return f.read()

    def pwrite(self, data: bytes | memoryview, offset: int) -> int:
        return os.pwrite(self._fd, data, offset)

    def fsync(self) -> None:
        os.fsync(self._fd)

    def fdatasync(self) -> None:
        os.fdatasync(self._fd)

    def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)

    def close(self) -> None:
        os.close(self._fd)


class OsFiles:
    """The real file system."""

    def open(self, path: Path) -> File:
        return _OsFile(os.open(path, os.O_RDWR | os.O_CREAT, 0o644))

    def mkdir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)

    def sync_dir(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def rename(self, src: Path, dst: Path) -> None:
        os.replace(src, dst)

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def exists(self, path: Path) -> bool:
        return path.exists()

    def append(self, path: Path) -> IO[str]:
        path.parent.mkdir(parents=True, exist_ok=True)
        file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (the caller closes it)
        if file.tell() and _last_byte(path) != b"\n":  # a life killed mid-line: end its line,
            file.write("\n")  # so that this life's first line is whole
        return file


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1)


def _sigkill_self() -> NoReturn:
    os.kill(os.getpid(), signal.SIGKILL)  # delivered before os.kill returns
    raise SystemExit(137)  # not reached


@dataclass(frozen=True)
class NodeHost:
    files: FileSystem = field(default_factory=OsFiles)
    clock: Callable[[], int] = time.time_ns  # the node's wall clock, ns (hello stamps: auth.py)
    # Event times, ns: the machine's clock, which no clock fault skews (machine_clock.py), if
    # `events_unskewed`.
    event_clock: Callable[[], int] = machine_clock.now_ns
    events_unskewed: bool = machine_clock.UNSKEWED
    die: Callable[[], NoReturn] = _sigkill_self
    pid: int | None = None  # None: os.getpid()
    rng: random.Random | None = None  # None: seeded from the node id, pid and time
    observer: Observer | None = None
    preallocate: int | None = None  # bytes the WAL preallocates at a time (None: its default)

    def process_id(self) -> int:
        return os.getpid() if self.pid is None else self.pid

    def random(self, node: str) -> random.Random:
        if self.rng is not None:
            return self.rng
        return random.Random(f"{node}:{self.process_id()}:{time.time_ns()}")

"""The simulated disk of one machine, and the file layer a simulated node writes through.

Each file holds two copies: what the page cache holds (every write) and what is durable (what
the last fsync covered). Rules it keeps, as LazyFS models a kernel and a disk:
- A kill -9 of the process changes nothing: the page cache belongs to the machine, so a
  restarted node reads every byte its previous life wrote, synced or not.
- `power_loss()` drops every write since each file's last fsync: the page cache becomes the
  durable copy again.
- `fsync`/`fdatasync` make the whole file durable (the WAL writes one file, data only).
Directory entries are taken as durable when created, renamed or removed (the WAL and the
snapshot sync their directory after each of those anyway).
- `full` (the `disk-full` fault) fails every write, every growth of a file and every new file
  with ENOSPC, as the FUSE layer of real runs does (cluster/diskfs.py): on a full
  copy-on-write or thin-provisioned disk an overwrite needs new blocks too.

`DiskFiles(disk, process, appends)` is the `FileSystem` (raft/host.py) of one simulated
process: the WAL goes to the disk; appended text files (events.jsonl) go to real files of the
run directory, and nothing a process writes reaches them once it is dead (what a killed
node's buffers held is lost, as with kill -9).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from splitbrain.cluster import damage
from splitbrain.cluster.damage import Damage
from splitbrain.sim.loop import Process


class SimFile:
    """The page cache and the durable copy of one file. Zeros written beyond the last stored
    byte (the WAL preallocates megabytes of them) only grow the size: reading gives them back."""

    def __init__(self) -> None:
        self.data = bytearray()  # the page cache: every byte written, up to the stored end
        self.size = 0  # bytes of the file: data, then zeros
        self.durable = bytearray()  # what survives a power loss (stored the same way)
        self.durable_size = 0
        self._dirty: tuple[int, int] | None = None  # [lo, hi) written since the last sync
        self._changed: int | None = None  # lowest durable offset changed since take_changes()

    def read(self) -> bytes:
        return bytes(self.data) + bytes(self.size - len(self.data))

    def pwrite(self, data: bytes | memoryview, offset: int) -> int:
        data = bytes(data)
        end = offset + len(data)
        stored = len(self.data)
        if offset >= stored and data.count(0) == len(data):
            self.size = max(self.size, end)  # zeros beyond the stored end: nothing to store
            return len(data)
        if offset > stored:
            self.data.extend(bytes(offset - stored))
        self.data[offset:end] = data
        self.size = max(self.size, end)
        lo, hi = self._dirty or (offset, end)
        self._dirty = (min(lo, offset), max(hi, end))
        return len(data)

    def sync(self) -> None:
        self.durable_size = self.size
        if len(self.durable) > self.size:  # cut short since (truncate)
            del self.durable[self.size :]
            self._changed = self.size if self._changed is None else min(self._changed, self.size)
        if self._dirty is None:
            return
        lo, hi = self._dirty
        self._dirty = None
        if len(self.durable) < lo:
            self.durable.extend(bytes(lo - len(self.durable)))
        self.durable[lo:hi] = self.data[lo:hi]
        self._changed = lo if self._changed is None else min(self._changed, lo)

    def take_changes(self) -> int | None:
        """The lowest offset of the durable copy that changed since the last call (or None)."""
        changed, self._changed = self._changed, None
        return changed

    def flip(self, offset: int, bit: int) -> int:
        """Write the byte at `offset` (below the stored end) with `bit` flipped; the byte before."""
        before = self.data[offset]
        self.pwrite(bytes([before ^ (1 << bit)]), offset)
        return before

    def truncate(self, size: int) -> None:
        """Cut the file to `size` bytes (or grow it with zeros), as ftruncate: in the page
        cache; the next sync makes the new size durable."""
        del self.data[size:]
        self.size = size
        if self._dirty is not None:
            lo, hi = self._dirty
            self._dirty = (lo, min(hi, size)) if lo < size else None

    def power_loss(self) -> None:
        self.data = bytearray(self.durable)
        self.size = self.durable_size
        self._dirty = None


class SimDisk:
    """The files of one machine, by path."""

    def __init__(self) -> None:
        self.files: dict[Path, SimFile] = {}
        self.full = False  # the disk-full fault: writes fail with ENOSPC

    def file(self, path: Path) -> SimFile:
        f = self.files.get(path)
        if f is None:
            self.check_space()  # a new file
            f = self.files[path] = SimFile()
        return f

    def check_space(self) -> None:
        """ENOSPC if the disk is full."""
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def power_loss(self) -> None:
        for f in self.files.values():
            f.power_loss()

    def damage(self, root: Path, seed: int) -> Damage | None:
        """The corrupt fault on the files under `root`, drawn as on a real disk (damage.py).
        The damage is done in the page cache, as a write would, so that the node's next fsync
        makes it durable: a node that starts on the damage without noticing it keeps it."""
        files = {str(path.relative_to(root)): f for path, f in sorted(self.files.items())
                 if path.is_relative_to(root)}  # fmt: skip
        return damage.draw({name: damage.extent(f.data) for name, f in files.items()}, seed,
                           _Media(root, self))

    def repair(self, root: Path, done: Damage) -> None:
        """Undo `done`."""
        damage.repair(_Media(root, self), done)

    def write_out(self, root: Path) -> None:
        """Write the page cache of every file to its path below `root` (what a person would
        find on the machine): its data, and its zeros as a hole (sparse: no disk space)."""
        for rel, f in self.files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as out:
                out.write(f.data)
                out.truncate(f.size)


class _Media:
    """The files of a simulated disk under `root`, for damage.py."""

    def __init__(self, root: Path, disk: SimDisk) -> None:
        self.root, self.disk = root, disk

    def flip(self, file: str, offset: int, bit: int) -> int:
        return self.disk.files[self.root / file].flip(offset, bit)

    def cut(self, file: str, offset: int) -> tuple[int, bytes]:
        f = self.disk.files[self.root / file]
        size, tail = f.size, bytes(f.data[offset:]).rstrip(b"\0")
        f.truncate(offset)
        return size, tail

    def restore(self, file: str, offset: int, tail: bytes, size: int) -> None:
        f = self.disk.files[self.root / file]
        f.pwrite(tail, offset)
        f.truncate(size)


class _OpenFile:
    """A file opened by one process: writes stop when the process is dead."""

    def __init__(self, file: SimFile, disk: SimDisk, proc: Process) -> None:
        self._file = file
        self._disk = disk
        self._proc = proc

    def read(self) -> bytes:
        return self._file.read()

    def pwrite(self, data: bytes | memoryview, offset: int) -> int:
        if not self._proc.alive:
            return len(data)
        self._disk.check_space()
        return self._file.pwrite(data, offset)

    def fsync(self) -> None:
        if self._proc.alive:
            self._file.sync()

    fdatasync = fsync

    def truncate(self, size: int) -> None:
        if self._proc.alive:
            if size > self._file.size:
                self._disk.check_space()
            self._file.truncate(size)

    def close(self) -> None:
        pass


class _AppendFile:
    """An appended text file (a real one) as one process sees it."""

    def __init__(self, file: IO[str], proc: Process) -> None:
        self._file = file
        self._proc = proc

    def write(self, text: str) -> int:
        if self._proc.alive:
            self._file.write(text)
        return len(text)

    def flush(self) -> None:
        if self._proc.alive:
            self._file.flush()  # readers follow it as it grows (cluster/roles.py)

    def close(self) -> None:
        pass  # it outlives the process: the cluster closes it


class DiskFiles:
    """The FileSystem of one simulated process (see the module docstring)."""

    def __init__(self, disk: SimDisk, proc: Process, appends: Callable[[Path], IO[str]]) -> None:
        self._disk = disk
        self._proc = proc
        self._appends = appends

    def open(self, path: Path) -> Any:
        return _OpenFile(self._disk.file(path), self._disk, self._proc)

    def mkdir(self, path: Path) -> None:
        pass

    def sync_dir(self, path: Path) -> None:
        pass

    def rename(self, src: Path, dst: Path) -> None:
        if self._proc.alive:
            self._disk.files[dst] = self._disk.files.pop(src)

    def remove(self, path: Path) -> None:
        if self._proc.alive:
            self._disk.files.pop(path, None)

    def exists(self, path: Path) -> bool:
        return path in self._disk.files

    def append(self, path: Path) -> Any:
        return _AppendFile(self._appends(path), self._proc)

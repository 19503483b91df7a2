"""A forgetful FUSE filesystem: a node's data directory that can lose what was never synced.

    python -m splitbrain.cluster.diskfs --tree T --lost L --mountpoint M --control-fd N

Mounted at M (a node's data directory), it passes every operation through to the directory T
(inside the run directory) at once, so a kill -9 loses nothing (the page cache survives it), and
remembers, LazyFS's model, what a power loss would take:
- per file, every block overwritten since its last fsync/fdatasync (its content as of that
  sync) and its size at that sync: `power-loss` writes those blocks back and truncates the file
  to that size. A file never synced since it was created is empty after a power loss;
- per directory, every entry created, removed or renamed since that directory's last fsync, in
  one ordered journal: `power-loss` undoes them newest first. A removed or replaced file is
  moved into L (the graveyard) rather than deleted, so that it can come back. An fsync of a
  directory makes durable every change up to the last one that touched it (a prefix of the
  journal, as a journaling filesystem commits in order): never less than POSIX promises for
  that directory, and no later change survives without an earlier one it may depend on.
The rules it keeps:
- One process per node (pyfuse3 serves one mount per process): a node's faults never touch
  another node's disk, and one node's I/O never waits for another's.
- Durability is modelled, not provided: a sync does not reach T's own disk (nothing here must
  survive a real crash of the machine), so a synced write costs one round trip through FUSE.
- No kernel cache can show what was forgotten: entries and attributes are never cached
  (timeouts 0) and a file's cached pages are dropped whenever it is opened (no keep_cache);
  a power loss follows a kill -9, so the node reopens everything.
- `full` makes every write, create and mkdir fail with ENOSPC (as on a full copy-on-write or
  thin-provisioned disk, where an overwrite needs new blocks too), and statfs report no space.
- Control: JSON lines on the socket N, one reply each ({"ok": true, ...} or {"ok": false,
  "error"}): {"op": "power-loss"}, {"op": "full", "on": bool}. EOF on it (the driver closed it,
  or died) or SIGTERM (the parent-death signal) unmounts and exits; the mount is never left.
Hard links, symbolic links, special files and extended attributes are not supported (ENOSYS):
no node we run needs them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import itertools
import json
import os
import shutil
import signal
import socket
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyfuse3
import pyfuse3.asyncio

from splitbrain.cluster.disks import FSNAME, SUBTYPE

BLOCK = 4096
GRAVE = -1  # the "parent inode" of entries moved into the graveyard


@dataclass(slots=True)
class _Unsynced:
    """One file's writes since its last sync: its size then, and the blocks changed since (as
    they were then; only the part below that size)."""

    size: int
    blocks: dict[int, bytes] = field(default_factory=dict)

    def keep(self, fd: int, start: int, end: int) -> None:
        """About to change bytes [start, end): remember the synced content of their blocks."""
        for block in range(start // BLOCK, (max(end, start + 1) - 1) // BLOCK + 1):
            at = block * BLOCK
            if at >= self.size:
                break
            if block not in self.blocks:
                self.blocks[block] = os.pread(fd, min(BLOCK, self.size - at), at)

    def restore(self, fd: int) -> int:
        """Back to the synced content; returns the bytes written back."""
        os.ftruncate(fd, self.size)
        for block, data in self.blocks.items():
            os.pwrite(fd, data, block * BLOCK)
        return sum(map(len, self.blocks.values()))


@dataclass(frozen=True, slots=True)
class _Change:
    """A directory entry changed since the fsync of its directory: `inode` created as
    (parent, name), renamed there from `old`, or (`old` None, `grave` set) removed from there.
    `grave`: the entry this change removed (or replaced), kept in the graveyard as (name there,
    its inode) until the change is durable."""

    parent: int
    name: str
    inode: int
    old: tuple[int, str] | None = None  # renamed from (parent, name)
    grave: tuple[str, int] | None = None

    @property
    def dirs(self) -> set[int]:
        return {self.parent} | ({self.old[0]} if self.old else set())

    @property
    def created(self) -> bool:
        return self.old is None and self.grave is None


def _fail(exc: OSError) -> pyfuse3.FUSEError:
    return pyfuse3.FUSEError(exc.errno or errno.EIO)


class Forgetful(pyfuse3.Operations):
    """The filesystem (see the module docstring). Every handler runs to its end without
    awaiting, so handlers never interleave and need no locks."""

    def __init__(self, tree: str, lost: str) -> None:
        super().__init__()
        self.tree, self.lost = tree, lost
        self.root = os.lstat(tree).st_ino  # the tree's own inode is FUSE's ROOT_INODE
        self.where: dict[int, tuple[int, str]] = {}  # inode -> (parent inode, name)
        self.unsynced: dict[int, _Unsynced] = {}  # inode -> its writes since its last sync
        self.journal: list[_Change] = []  # entry changes since their directories' fsync
        self.handles: dict[int, int] = {}  # open file's fd -> inode
        self.full = False
        self._graves = itertools.count()

    # Inodes and paths.

    def _ino(self, st_ino: int) -> int:
        return pyfuse3.ROOT_INODE if st_ino == self.root else st_ino

    def path(self, inode: int) -> str:
        if inode == pyfuse3.ROOT_INODE:
            return self.tree
        try:
            parent, name = self.where[inode]
        except KeyError:
            raise pyfuse3.FUSEError(errno.ENOENT) from None
        return os.path.join(self.lost if parent == GRAVE else self.path(parent), name)

    def _child(self, parent: int, name: bytes) -> str:
        return os.path.join(self.path(parent), os.fsdecode(name))

    def _attr(self, path: str | None = None, fd: int | None = None) -> pyfuse3.EntryAttributes:
        try:
            st = os.fstat(fd) if fd is not None else os.lstat(path)  # type: ignore[arg-type]
        except OSError as exc:
            raise _fail(exc) from None
        entry = pyfuse3.EntryAttributes()
        for name in ("st_mode", "st_nlink", "st_uid", "st_gid", "st_rdev", "st_size",
                     "st_atime_ns", "st_mtime_ns", "st_ctime_ns"):  # fmt: skip
            setattr(entry, name, getattr(st, name))
        entry.st_ino = self._ino(st.st_ino)
        entry.generation = 0
        entry.entry_timeout = 0  # never cached: a power loss changes what is there
        entry.attr_timeout = 0
        entry.st_blksize = BLOCK
        entry.st_blocks = st.st_blocks
        return entry

    def _track(self, inode: int, fd: int) -> _Unsynced:
        """The file's unsynced writes; a file first seen now is synced as it stands."""
        record = self.unsynced.get(inode)
        if record is None:
            record = self.unsynced[inode] = _Unsynced(os.fstat(fd).st_size)
        return record

    # Lookups and attributes.

    async def lookup(self, parent_inode: int, name: bytes, ctx: Any = None
                     ) -> pyfuse3.EntryAttributes:  # fmt: skip
        attr = self._attr(self._child(parent_inode, name))
        if attr.st_ino != pyfuse3.ROOT_INODE:
            self.where[attr.st_ino] = (parent_inode, os.fsdecode(name))
        return attr

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        pass  # `where` keeps every inode it has seen: a data directory holds a few files

    async def getattr(self, inode: int, ctx: Any = None) -> pyfuse3.EntryAttributes:
        return self._attr(self.path(inode))

    async def setattr(self, inode: int, attr: pyfuse3.EntryAttributes, fields: Any,
                      fh: int | None, ctx: Any) -> pyfuse3.EntryAttributes:  # fmt: skip
        path = self.path(inode)
        try:
            if fields.update_size:
                self._truncate(inode, path, attr.st_size)
            if fields.update_mode:
                os.chmod(path, stat.S_IMODE(attr.st_mode))
            if fields.update_uid or fields.update_gid:
                os.chown(path, attr.st_uid if fields.update_uid else -1,
                         attr.st_gid if fields.update_gid else -1)  # fmt: skip
            if fields.update_atime or fields.update_mtime:
                st = os.lstat(path)
                os.utime(path, ns=(attr.st_atime_ns if fields.update_atime else st.st_atime_ns,
                                   attr.st_mtime_ns if fields.update_mtime else st.st_mtime_ns))
        except OSError as exc:
            raise _fail(exc) from None
        return self._attr(path)

    def _truncate(self, inode: int, path: str, size: int) -> None:
        fd = os.open(path, os.O_RDWR)
        try:
            current = os.fstat(fd).st_size
            if size > current and self.full:
                raise pyfuse3.FUSEError(errno.ENOSPC)
            self._track(inode, fd).keep(fd, size, current)
            os.ftruncate(fd, size)
        finally:
            os.close(fd)

    async def statfs(self, ctx: Any) -> pyfuse3.StatvfsData:
        st = os.statvfs(self.tree)
        out = pyfuse3.StatvfsData()
        for name in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files",
                     "f_ffree", "f_favail", "f_namemax"):  # fmt: skip
            setattr(out, name, getattr(st, name))
        if self.full:
            out.f_bfree = out.f_bavail = 0
        return out

    # Files.

    async def open(self, inode: int, flags: int, ctx: Any) -> pyfuse3.FileInfo:
        path = self.path(inode)
        if flags & os.O_TRUNC:
            self._truncate(inode, path, 0)
        try:
            fd = os.open(path, _backing_flags(flags))
        except OSError as exc:
            raise _fail(exc) from None
        self.handles[fd] = inode
        return pyfuse3.FileInfo(fh=fd, keep_cache=False)

    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: Any
                     ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:  # fmt: skip
        if self.full:
            raise pyfuse3.FUSEError(errno.ENOSPC)
        try:
            fd = os.open(self._child(parent_inode, name),
                         _backing_flags(flags) | os.O_CREAT | os.O_EXCL, stat.S_IMODE(mode))
        except OSError as exc:
            raise _fail(exc) from None
        attr = self._attr(fd=fd)
        inode = attr.st_ino
        self.where[inode] = (parent_inode, os.fsdecode(name))
        self.unsynced[inode] = _Unsynced(0)
        self.journal.append(_Change(parent_inode, os.fsdecode(name), inode))
        self.handles[fd] = inode
        return pyfuse3.FileInfo(fh=fd, keep_cache=False), attr

    async def read(self, fh: int, off: int, size: int) -> bytes:
        return os.pread(fh, size, off)

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        if self.full:
            raise pyfuse3.FUSEError(errno.ENOSPC)
        self._track(self.handles[fh], fh).keep(fh, off, off + len(buf))
        try:
            return os.pwrite(fh, buf, off)
        except OSError as exc:
            raise _fail(exc) from None

    async def fsync(self, fh: int, datasync: bool) -> None:
        self.unsynced.pop(self.handles[fh], None)  # as it stands now is what survives

    async def flush(self, fh: int) -> None:
        pass

    async def release(self, fh: int) -> None:
        del self.handles[fh]
        os.close(fh)

    # Directories.

    async def opendir(self, inode: int, ctx: Any) -> int:
        self.path(inode)  # ENOENT if unknown
        return inode  # a directory's handle is its inode

    async def readdir(self, fh: int, start_id: int, token: Any) -> None:
        path = self.path(fh)
        entries = []
        for name in os.listdir(path):
            attr = self._attr(os.path.join(path, name))
            entries.append((attr.st_ino, name, attr))
        for inode, name, attr in sorted(entries):  # the inode is the offset to go on from
            if inode <= start_id:
                continue
            if not pyfuse3.readdir_reply(token, os.fsencode(name), attr, inode):
                break
            self.where[inode] = (fh, name)

    async def releasedir(self, fh: int) -> None:
        pass

    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        last = max((i for i, c in enumerate(self.journal) if fh in c.dirs), default=-1)
        durable, self.journal = self.journal[: last + 1], self.journal[last + 1 :]
        for change in durable:
            if change.grave is not None:  # removed for good
                grave, inode = change.grave
                _remove(os.path.join(self.lost, grave))
                self.where.pop(inode, None)
                self.unsynced.pop(inode, None)

    async def mkdir(self, parent_inode: int, name: bytes, mode: int, ctx: Any
                    ) -> pyfuse3.EntryAttributes:  # fmt: skip
        if self.full:
            raise pyfuse3.FUSEError(errno.ENOSPC)
        path = self._child(parent_inode, name)
        try:
            os.mkdir(path, stat.S_IMODE(mode))
        except OSError as exc:
            raise _fail(exc) from None
        attr = self._attr(path)
        self.where[attr.st_ino] = (parent_inode, os.fsdecode(name))
        self.journal.append(_Change(parent_inode, os.fsdecode(name), attr.st_ino))
        return attr

    async def unlink(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        self._bury(parent_inode, name, directory=False)

    async def rmdir(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        self._bury(parent_inode, name, directory=True)

    def _bury(self, parent: int, name: bytes, *, directory: bool) -> None:
        path = self._child(parent, name)
        try:
            st = os.lstat(path)
            if directory != stat.S_ISDIR(st.st_mode):
                raise OSError(errno.EISDIR if not directory else errno.ENOTDIR, path)
            if directory and os.listdir(path):
                raise OSError(errno.ENOTEMPTY, path)
            grave = self._to_grave(path, self._ino(st.st_ino))
        except OSError as exc:
            raise _fail(exc) from None
        self.journal.append(_Change(parent, os.fsdecode(name), grave[1], grave=grave))

    def _to_grave(self, path: str, inode: int) -> tuple[str, int]:
        grave = str(next(self._graves))
        os.rename(path, os.path.join(self.lost, grave))
        self.where[inode] = (GRAVE, grave)
        return grave, inode

    async def rename(self, parent_inode_old: int, name_old: bytes, parent_inode_new: int,
                     name_new: bytes, flags: int, ctx: Any) -> None:  # fmt: skip
        if flags & ~1:  # RENAME_NOREPLACE only; no node we run exchanges entries
            raise pyfuse3.FUSEError(errno.EINVAL)
        src = self._child(parent_inode_old, name_old)
        dst = self._child(parent_inode_new, name_new)
        try:
            moved = os.lstat(src)
            grave = None
            if os.path.lexists(dst):
                there = os.lstat(dst)
                if there.st_ino == moved.st_ino:
                    return  # the same entry (no hard links here): nothing changes
                if flags & 1:
                    raise OSError(errno.EEXIST, dst)
                if stat.S_ISDIR(moved.st_mode) != stat.S_ISDIR(there.st_mode):
                    raise OSError(errno.EISDIR if stat.S_ISDIR(there.st_mode) else errno.ENOTDIR,
                                  dst)  # fmt: skip
                if stat.S_ISDIR(there.st_mode) and os.listdir(dst):
                    raise OSError(errno.ENOTEMPTY, dst)
                grave = self._to_grave(dst, self._ino(there.st_ino))
            os.rename(src, dst)
        except OSError as exc:
            raise _fail(exc) from None
        inode = self._ino(moved.st_ino)
        self.where[inode] = (parent_inode_new, os.fsdecode(name_new))
        self.journal.append(_Change(parent_inode_new, os.fsdecode(name_new), inode,
                                    old=(parent_inode_old, os.fsdecode(name_old)), grave=grave))

    # Faults.

    def power_loss(self) -> dict[str, int]:
        """Forget every write and entry change not synced (see the module docstring)."""
        restored = 0
        files = 0
        for inode, record in self.unsynced.items():
            try:
                fd = os.open(self.path(inode), os.O_RDWR)
            except (OSError, pyfuse3.FUSEError):
                continue  # gone with its entry: the journal brings back what was durable
            try:
                restored += record.restore(fd)
                files += 1
            finally:
                os.close(fd)
        self.unsynced.clear()
        undone = len(self.journal)
        for change in reversed(self.journal):
            here = os.path.join(self.path(change.parent), change.name)
            if change.created:
                _remove(here)
                self.where.pop(change.inode, None)
                continue
            if change.old is not None:
                os.rename(here, os.path.join(self.path(change.old[0]), change.old[1]))
                self.where[change.inode] = change.old
            if change.grave is not None:
                grave, inode = change.grave
                os.rename(os.path.join(self.lost, grave), here)
                self.where[inode] = (change.parent, change.name)
        self.journal.clear()
        return {"files": files, "bytes": restored, "entries": undone}

    def control(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "power-loss":
            return self.power_loss()
        if op == "full":
            self.full = bool(request["on"])
            return {}
        raise ValueError(f"unknown op {op!r}")


def _backing_flags(flags: int) -> int:
    """The flags a backing file is opened with: always read-write (remembering a block means
    reading it), never appending (FUSE gives every write its offset), never truncating (done
    first, remembered)."""
    return (flags & ~(os.O_ACCMODE | os.O_APPEND | os.O_TRUNC | os.O_CREAT | os.O_EXCL)
            ) | os.O_RDWR  # fmt: skip


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


async def serve(ops: Forgetful, control_fd: int) -> None:
    """Answer the control channel while pyfuse3 serves the mount; stop at EOF or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # spawn sent it blocked
    reader, writer = await asyncio.open_unix_connection(sock=socket.socket(fileno=control_fd))

    async def answer() -> None:
        while line := await reader.readline():
            try:
                reply = {"ok": True, **ops.control(json.loads(line))}
            except (ValueError, KeyError, TypeError, OSError) as exc:
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()

    fuse = asyncio.create_task(pyfuse3.main())
    tasks = [asyncio.create_task(answer()), asyncio.create_task(stop.wait())]
    try:
        await asyncio.wait([*tasks, fuse], return_when=asyncio.FIRST_COMPLETED)
    finally:
        # From here on the unmount must finish. asyncio.run's teardown gives SIGTERM back its
        # default action, and the parent-death SIGTERM often comes just after the EOF: it
        # would kill us between the two and leave a dead mount. Blocked, it waits, unneeded.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    for task in tasks:
        task.cancel()
    if not fuse.done():
        _terminate()
    await asyncio.gather(*tasks, fuse, return_exceptions=True)


def _terminate() -> None:
    """pyfuse3's own way out (cancelling its main leaves its workers waiting), less a race of its
    asyncio mode: it fails the worker's wait for the FUSE device even when that wait has just
    ended with a request, which raises InvalidStateError. One worker waits at a time (they take
    a lock around the wait), so that one reads its request, sees the session ended and stops."""
    with contextlib.suppress(asyncio.InvalidStateError):
        pyfuse3.terminate()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="splitbrain-diskfs")
    parser.add_argument("--tree", required=True)
    parser.add_argument("--lost", required=True)
    parser.add_argument("--mountpoint", required=True)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--lifeline-fd", type=int)  # inherited from spawn; EOF on control does
    args = parser.parse_args(argv)
    pyfuse3.asyncio.enable()
    ops = Forgetful(os.path.abspath(args.tree), os.path.abspath(args.lost))
    options = {f"fsname={FSNAME}:{os.getpid()}", f"subtype={SUBTYPE}"}
    pyfuse3.init(ops, args.mountpoint, options)
    try:
        asyncio.run(serve(ops, args.control_fd))
    finally:
        pyfuse3.close(unmount=True)  # lazy (MNT_DETACH) as root: open files cannot block it
    return 0


if __name__ == "__main__":
    sys.exit(main())

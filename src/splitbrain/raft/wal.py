"""Durable storage of one Raft node: an append-only log of checksummed records.

Each record is `length (4 bytes BE) | crc32 (4 bytes BE) | kind (1 byte) | payload | 0xA5`, the
length and checksum covering kind and payload; the end mark (never zero) is the record's last
byte, so a record is written whole exactly when its end mark is. Kinds: an entry, the hard
state (term, vote, commit), or the snapshot mark (index, term: the log starts after that
entry, which a durable snapshot holds).

Rules it keeps:
- `save()` writes every record of a batch with one write and makes it durable with ONE fsync
  before the caller sends the messages that depend on it (Ready order). Only new entries or a
  new term/vote are written and synced (`must_save`).
  Entries are written before the hard state of the same batch, so a surviving hard state never
  names a commit index whose entries were lost.
- An entry at an index at or below the last one replaces that suffix of the log (a follower
  truncating a conflicting suffix); recovery replays the records and does the same.
- The file grows by preallocated chunks of zeros; records overwrite them in place, so an fsync
  flushes data only (no file-size change, no journal commit). A zero length ends the log.
  It grows by one ftruncate to the new size (atomic: a kill or a power loss leaves the old
  size or the new one), then zeros are written over the chunk and synced; so its size is
  always a whole number of chunks, and a file that is not was cut short: `WALError` (file,
  offset), since the records it lost may have been durable. Without that size a log cut at a
  record boundary could not be told from a shorter one.
- Recovery tells a torn tail from corruption. The log ends at the first record that is short or
  fails its checksum. That record is a *torn tail*, an interrupted write, only if it could be
  one: nothing but zeros follows its written bytes, its length reaches past them, no length
  that ends with them makes it check, and no valid record starts anywhere after it. A torn tail
  (or garbage after the last record that is no record at all) is zeroed and fsynced before
  anything is returned, so it is never applied nor mistaken for records written later.
  Anything else is *corruption* (`WALError`, naming the file and the offset): a damaged record
  with valid records after it, or a complete record that fails its checksum. Those records may
  have been durable, acknowledged, counted in a quorum: a node must never vote or lead without
  them, so it refuses to start and the file is left as it was, for a person to look at.
  A kill -9 leaves a written prefix and zeros, always a torn tail. A damaged last record is
  corruption too, even one that ends in zero bytes of its own (an entry without data): its end
  mark says it was written whole (read as torn, it was dropped, and a node that had counted it
  in a quorum voted without it). What stays ambiguous: a power loss that kept a later page of
  the last, unsynced batch but not an earlier one reads as corruption (refused: the safe side).
- Recovery syncs the file before it returns: a process killed between a write and its fsync
  left that write in the page cache, where the next process reads it as if it were durable. A
  power loss before anyone syncs it would take back entries the node has since counted as
  stored (acknowledged, counted toward a quorum, applied).
- Compaction (`compact(index, term)`, once a snapshot up to `index` is durable) rewrites the
  log: a snapshot mark, the hard state, and the entries after `index` — those only if the log
  holds entry `index` with `term` (§7: else they conflict with the snapshot) — written to
  `raft.wal.tmp` with its preallocated zeros, fsynced, renamed over `raft.wal`, the directory
  fsynced. A crash before the rename leaves the old log (a leftover tmp is removed at open),
  after it the new one: both are a log the durable snapshot completes (`after_snapshot`).
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from splitbrain.raft import codec
from splitbrain.raft.host import File, FileSystem, OsFiles, replace_file, tmp_path
from splitbrain.raft.messages import Entry, HardState

_HEADER = struct.Struct(">II")  # length of kind+payload, crc32 of kind+payload
ENTRY = b"E"  # record kinds
HARD_STATE = b"H"
SNAPSHOT = b"S"
_KIND = re.compile(b"[" + ENTRY + HARD_STATE + SNAPSHOT + b"]")  # where a kind byte may be
_MARK = struct.Struct(">QQ")  # the snapshot mark: index, term
_END = 0xA5  # the last byte of every record
FILE_NAME = "raft.wal"
PREALLOCATE = 8 * 1024 * 1024  # bytes of zeros added at a time


class WALError(Exception):
    """The log is damaged in a way a torn tail cannot explain (names the file and offset)."""


@dataclass(slots=True)
class Recovered:
    """What a node restarts from."""

    hard_state: HardState = field(default_factory=HardState)
    entries: list[Entry] = field(default_factory=list)  # from snapshot[0] + 1 on
    truncated_bytes: int = 0  # bytes of torn or corrupt tail that were discarded (zeroed)
    snapshot: tuple[int, int] = (0, 0)  # the log starts after this (index, term)


def after_snapshot(entries: list[Entry], index: int, term: int) -> list[Entry]:
    """The entries a log keeps under a snapshot ending at (index, term) (§7): those after it
    if the log holds entry `index` with `term`, else none (they would conflict)."""
    for n, entry in enumerate(entries):
        if entry.index == index:
            return entries[n + 1 :] if entry.term == term else []
    return [e for e in entries if e.index > index] if entries and entries[0].index > index else []


def encode_mark(index: int, term: int) -> bytes:
    return _MARK.pack(index, term)


def decode_mark(payload: bytes) -> tuple[int, int]:
    if len(payload) != _MARK.size:
        raise codec.CodecError(f"a snapshot mark of {len(payload)} bytes")
    index, term = _MARK.unpack(payload)
    if index > codec.MAX_COUNTER or term > codec.MAX_COUNTER:
        raise codec.CodecError(f"snapshot mark index {index} or term {term} is out of range")
    return index, term


def _record(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return _HEADER.pack(len(body), zlib.crc32(body)) + body + bytes((_END,))


class WAL:
    """An open log file; build one with `WAL.open(dir)`."""

    def __init__(
        self, path: Path, file: File, *, fsync: bool, hard_state: HardState, end: int, size: int,
        chunk: int, files: FileSystem,
    ) -> None:
        self.path = path
        self._file: File | None = file
        self._fsync = fsync
        self._hard_state = self._written = hard_state  # latest given / latest written
        self._vote = (hard_state.term, hard_state.vote)  # as written
        self._end = end  # where the next record goes
        self._size = size  # bytes of the file, written (zeros beyond _end): whole chunks
        self._chunk = chunk  # bytes preallocated at a time
        self._files = files

    @classmethod
    def open(
        cls, directory: Path, *, fsync: bool = True, files: FileSystem | None = None,
        preallocate: int | None = None,
    ) -> tuple[WAL, Recovered]:
        """Open (or create) the log in `directory`, recovering what it durably holds.
        `files`: the file system (host.py; the real one by default); `preallocate`: bytes of
        zeros to add at a time (default PREALLOCATE)."""
        files = files or OsFiles()
        files.mkdir(directory)
        path = directory / FILE_NAME
        files.remove(tmp_path(path))  # a compaction that crashed before its rename
        chunk = preallocate or PREALLOCATE
        file = files.open(path)
        try:
            data = file.read()
            if len(data) % chunk:  # WALError: left as it is, for a person
                raise WALError(
                    f"{path}: offset {len(data)}: cut short: the file ends {len(data) % chunk} "
                    f"bytes into a {chunk}-byte chunk; refusing to start with a log that may "
                    "have lost durable entries")
            recovered, good = replay(data, path)
            tail = len(data) - good
            if recovered.truncated_bytes:  # zero the discarded tail: no stale record may
                # ever follow records written from here on
                file.pwrite(bytes(tail), good)
            if recovered.truncated_bytes or (fsync and data):
                # What a killed process wrote and never synced is still in the page cache, and
                # reads back as if durable: sync it before a vote, an ack or a commit rests on it
                file.fsync()
            if fsync and not data:  # a new file: its directory entry must survive a crash too
                files.sync_dir(directory)
        except BaseException:
            file.close()
            raise
        wal = cls(path, file, fsync=fsync, hard_state=recovered.hard_state, end=good,
                  size=len(data), chunk=chunk, files=files)
        if not data:
            wal._preallocate(1)  # now, rather than in the middle of the first election
        return wal, recovered

    def must_save(self, hard_state: HardState | None, entries: Sequence[Entry]) -> bool:
        """Whether `save` would write (and sync): new entries, or a new term or vote.

        A hard state that only moves the commit index is not written on its own (etcd's
        MustSync): a commit index lost in a crash is learned again from the leader, and every
        entry it covers was durable when appended. It rides with the next write.
        """
        if entries:
            return True
        return hard_state is not None and (hard_state.term, hard_state.vote) != self._vote

    def save(self, hard_state: HardState | None, entries: Sequence[Entry]) -> None:
        """Append entries, then the hard state, and make them durable with one fsync.

        Does no I/O unless `must_save`. May run in a worker thread (then nothing else may use
        the log until it returns): the disk write itself can block, e.g. while an earlier
        fsync still holds the last page.
        """
        data = self._encode(hard_state, entries)
        if data:
            self._write(data)
            if self._fsync:
                self._open().fdatasync()

    def write_unsynced(self, hard_state: HardState | None, entries: Sequence[Entry]) -> None:
        """What `save` writes, without its fsync (`--unsafe ack-before-fsync`; `sync` later)."""
        self._write(self._encode(hard_state, entries))

    def sync(self) -> None:
        """Make everything written so far durable. Safe alongside a write from another thread:
        it touches the file only."""
        if self._fsync:
            self._open().fdatasync()

    def save_torn(self, hard_state: HardState | None, entries: Sequence[Entry]) -> None:
        """Write only the first half of the bytes `save` would write, and no fsync: the torn
        write a power loss can leave behind (crash point torn-write: the node dies next)."""
        data = self._encode(hard_state, entries)
        self._write(data[: len(data) // 2])

    def _encode(self, hard_state: HardState | None, entries: Sequence[Entry]) -> bytes:
        """The records `save` writes (b"" when nothing must be saved)."""
        if hard_state is not None:
            self._hard_state = hard_state
        hs = self._hard_state
        if not self.must_save(hs, entries):
            return b""
        records = [_record(ENTRY, codec.encode_entry(e)) for e in entries]
        if hs != self._written:
            records.append(_record(HARD_STATE, codec.encode_hard_state(hs)))
            self._written = hs
            self._vote = (hs.term, hs.vote)
        return b"".join(records)

    def compact(self, index: int, term: int) -> None:
        """Rewrite the log to start after (index, term), a durable snapshot's last entry (see
        the module's rules). Nothing else may use the log meanwhile."""
        old = self._open()
        recovered, _ = replay(old.read()[: self._end], self.path)
        base = recovered.snapshot[0]
        if index <= base:
            return
        kept = after_snapshot(recovered.entries, index, term)
        records = [_record(SNAPSHOT, encode_mark(index, term)),
                   _record(HARD_STATE, codec.encode_hard_state(recovered.hard_state)),
                   *(_record(ENTRY, codec.encode_entry(e)) for e in kept)]  # fmt: skip
        body = b"".join(records)
        size = -(-(len(body) + 1) // self._chunk) * self._chunk  # zeros end the log
        new = replace_file(self._files, self.path, body + bytes(size - len(body)),
                           fsync=self._fsync)
        old.close()
        self._file = new
        self._end, self._size = len(body), size

    def _write(self, data: bytes) -> None:
        if self._end + len(data) > self._size:
            self._preallocate(self._end + len(data))
        file = self._open()
        view = memoryview(data)
        while view:
            written = file.pwrite(view, self._end)
            self._end += written
            view = view[written:]

    def _preallocate(self, needed: int) -> None:
        """Extend the file by whole chunks, at once (truncate), then write their zeros, so that
        appending changes no metadata and an fdatasync need not commit the filesystem's
        journal (which would also flush every other file's dirty data, e.g. the events file,
        on ext4)."""
        size = self._size
        while size < needed:
            size += self._chunk
        file = self._open()
        file.truncate(size)
        file.pwrite(bytes(size - self._size), self._size)
        if self._fsync:
            file.fsync()
        self._size = size

    def _open(self) -> File:
        assert self._file is not None, "the log is closed"
        return self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def replay(data: bytes, path: Path | str = "<wal>") -> tuple[Recovered, int]:
    """The state the records in `data` describe, and the length of its valid prefix.

    Raises WALError if the log is corrupt rather than torn (see the module's rules); a torn
    tail is counted in `truncated_bytes` for the caller to discard."""
    out = Recovered()
    entries = out.entries
    base = 0  # the snapshot mark's index: entries[i] has index base + 1 + i
    pos, end = 0, len(data)
    while pos < end:
        body = _record_at(data, pos)
        if body is None:
            break  # zeros (the end), or a torn or damaged record: _tail() decides which
        kind, payload = body[:1], body[1:]
        try:
            if kind == ENTRY:
                entry, used = codec.decode_entry_from(payload, 0)
                if used != len(payload):
                    raise codec.CodecError("bytes after the entry")
                last = base + len(entries)  # the check below keeps entries contiguous
                if entry.index > last + 1 or entry.index <= base:
                    raise WALError(
                        f"{path}: offset {pos}: entry {entry.index} leaves a gap after {last}"
                        + (f" (the log starts after {base})" if base else "")
                    )
                del entries[entry.index - base - 1 :]
                entries.append(entry)
            elif kind == HARD_STATE:
                out.hard_state = codec.decode_hard_state(payload)
            elif kind == SNAPSHOT:
                index, term = decode_mark(payload)
                if index < base:
                    raise WALError(f"{path}: offset {pos}: snapshot mark {index} below {base}")
                entries[:] = after_snapshot(entries, index, term)
                base = index
                out.snapshot = (index, term)
            else:
                raise WALError(f"{path}: offset {pos}: unknown record kind {kind!r}")
        except codec.CodecError as exc:
            # The checksum matched, so these bytes were written like this: not a torn tail.
            raise WALError(f"{path}: offset {pos}: {exc}") from None
        pos += _HEADER.size + len(body) + 1
    out.truncated_bytes = _tail(data, pos, path)
    last = base + len(entries)
    hs = out.hard_state
    if hs.commit > last:  # cannot happen with entries-before-hard-state; keep it safe anyway
        out.hard_state = HardState(term=hs.term, vote=hs.vote, commit=last)
    return out, pos


def _record_at(data: bytes, pos: int) -> bytes | None:
    """The body (kind + payload) of a whole record at `pos` whose checksum matches, or None."""
    if len(data) - pos < _HEADER.size:
        return None
    size, crc = _HEADER.unpack_from(data, pos)
    start = pos + _HEADER.size
    if size == 0 or size >= len(data) - start or data[start + size] != _END:
        return None
    body = data[start : start + size]
    return body if zlib.crc32(body) == crc else None


def records(data: bytes | bytearray, pos: int = 0) -> Iterator[tuple[int, int, bytes, bytes]]:
    """(offset, end, kind, payload) of each whole, checksummed record from `pos` on, up to the
    first that is not one (zeros: the end of the log; or a torn or damaged record). For
    readers of a log's bytes other than recovery (the simulator reads durable bytes)."""
    while (body := _record_at(data, pos)) is not None:
        end = pos + _HEADER.size + len(body) + 1
        yield pos, end, bytes(body[:1]), bytes(body[1:])
        pos = end


def _tail(data: bytes, pos: int, path: Path | str) -> int:
    """Bytes to discard after the last valid record at `pos`: 0 if only zeros follow, the
    length of a torn tail; WALError if what follows is corruption."""
    if data.count(0, pos) == len(data) - pos:
        return 0
    written = pos + len(data[pos:].rstrip(b"\0"))  # one past the last byte that is not zero
    size, crc = _HEADER.unpack_from(data[pos : pos + _HEADER.size].ljust(_HEADER.size, b"\0"))
    problem = None
    later = _first_record(data, pos + 1, written)
    if later is not None:
        problem = f"a valid record follows at offset {later}"
    elif size and pos + _HEADER.size + size < written:  # its end mark was written
        problem = "the record is complete but fails its checksum"
    else:
        # Complete, but its length was damaged? Then the last byte written is its end mark.
        start = pos + _HEADER.size
        n = written - 1 - start
        if n > 0 and data[written - 1] == _END and zlib.crc32(data[start : start + n]) == crc:
            problem = f"the record is complete ({n} bytes) but its length reads {size}"
    if problem is not None:
        raise WALError(
            f"{path}: offset {pos}: corrupt, not a torn tail: {problem}; refusing to start "
            "with a log that may have lost durable entries"
        )
    return written - pos


def _first_record(data: bytes, start: int, stop: int) -> int | None:
    """The offset of the first whole, checksummed record beginning in [start, stop), if any:
    its kind byte is E or H, so only those bytes are tried."""
    for m in _KIND.finditer(data, start + _HEADER.size, stop + _HEADER.size):
        at = m.start() - _HEADER.size
        if _record_at(data, at) is not None:
            return at
    return None

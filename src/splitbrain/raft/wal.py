"""Durable storage of one Raft node: an append-only log of checksummed records.

Each record is `length (4 bytes BE) | crc32 (4 bytes BE) | kind (1 byte) | payload`, the checksum
covering kind and payload. Kinds: an entry, or the hard state (term, vote, commit).

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
- Recovery after kill -9 at any byte: the first record that is short or fails its checksum ends
  the log; what follows is zeroed (and fsynced) before anything is returned, so a torn or
  corrupt tail is discarded, never applied, and never mistaken for records written later.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from splitbrain.raft import codec
from splitbrain.raft.host import File, FileSystem, OsFiles
from splitbrain.raft.messages import Entry, HardState

_HEADER = struct.Struct(">II")  # length of kind+payload, crc32 of kind+payload
ENTRY = b"E"  # record kinds
HARD_STATE = b"H"
FILE_NAME = "raft.wal"
PREALLOCATE = 8 * 1024 * 1024  # bytes of zeros added at a time


class WALError(Exception):
    """The log is damaged in a way a torn tail cannot explain (names the file and offset)."""


@dataclass(slots=True)
class Recovered:
    """What a node restarts from."""

    hard_state: HardState = field(default_factory=HardState)
    entries: list[Entry] = field(default_factory=list)
    truncated_bytes: int = 0  # bytes of torn or corrupt tail that were discarded (zeroed)


def _record(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return _HEADER.pack(len(body), zlib.crc32(body)) + body


class WAL:
    """An open log file; build one with `WAL.open(dir)`."""

    def __init__(
        self, path: Path, file: File, *, fsync: bool, hard_state: HardState, end: int, size: int
    ) -> None:
        self.path = path
        self._file: File | None = file
        self._fsync = fsync
        self._hard_state = self._written = hard_state  # latest given / latest written
        self._vote = (hard_state.term, hard_state.vote)  # as written
        self._end = end  # where the next record goes
        self._size = size  # bytes of the file, written (zeros beyond _end)
        self._chunk = PREALLOCATE

    @classmethod
    def open(
        cls, directory: Path, *, fsync: bool = True, files: FileSystem | None = None,
        preallocate: int | None = None,
    ) -> tuple[WAL, Recovered]:
        """Open (or create) the log in `directory`, recovering what it durably holds.
        `preallocate`: bytes of zeros to add at a time (default PREALLOCATE)."""
        files = files or OsFiles()
        files.mkdir(directory)
        path = directory / FILE_NAME
        file = files.open(path)
        try:
            data = file.read()
            recovered, good = replay(data, path)
            tail = len(data) - good
            if data.count(0, good) != tail:  # zero the discarded tail: no stale record may
                # ever follow records written from here on
                recovered.truncated_bytes = len(data[good:].rstrip(b"\0"))
                file.pwrite(bytes(tail), good)
                file.fsync()
            if fsync and not data:  # a new file: its directory entry must survive a crash too
                files.sync_dir(directory)
        except BaseException:
            file.close()
            raise
        wal = cls(path, file, fsync=fsync, hard_state=recovered.hard_state, end=good,
                  size=len(data))
        wal._chunk = preallocate or PREALLOCATE
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
        if hard_state is not None:
            self._hard_state = hard_state
        hs = self._hard_state
        if not self.must_save(hs, entries):
            return
        records = [_record(ENTRY, codec.encode_entry(e)) for e in entries]
        if hs != self._written:
            records.append(_record(HARD_STATE, codec.encode_hard_state(hs)))
            self._written = hs
            self._vote = (hs.term, hs.vote)
        data = b"".join(records)
        if self._end + len(data) > self._size:
            self._preallocate(self._end + len(data))
        file = self._file
        assert file is not None, "the log is closed"
        view = memoryview(data)
        while view:
            written = file.pwrite(view, self._end)
            self._end += written
            view = view[written:]
        if self._fsync:
            file.fdatasync()

    def _preallocate(self, needed: int) -> None:
        """Extend the file with written zeros, so that appending changes no metadata and an
        fdatasync need not commit the filesystem's journal (which would also flush every other
        file's dirty data, e.g. the events file, on ext4)."""
        size = self._size
        while size < needed:
            size += self._chunk
        assert self._file is not None, "the log is closed"
        self._file.pwrite(bytes(size - self._size), self._size)
        if self._fsync:
            self._file.fsync()
        self._size = size

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def replay(data: bytes, path: Path | str = "<wal>") -> tuple[Recovered, int]:
    """The state the records in `data` describe, and the length of its valid prefix."""
    out = Recovered()
    entries = out.entries
    end = 0
    for pos, record_end, kind, payload in records(data):
        try:
            if kind == ENTRY:
                entry, used = codec.decode_entry_from(payload, 0)
                if used != len(payload):
                    raise codec.CodecError("bytes after the entry")
                last = len(entries)  # entries[i - 1] has index i: the check below keeps it so
                if entry.index > last + 1 or entry.index < 1:
                    raise WALError(
                        f"{path}: offset {pos}: entry {entry.index} leaves a gap after {last}"
                    )
                del entries[entry.index - 1 :]
                entries.append(entry)
            elif kind == HARD_STATE:
                out.hard_state = codec.decode_hard_state(payload)
            else:
                raise WALError(f"{path}: offset {pos}: unknown record kind {kind!r}")
        except codec.CodecError as exc:
            # The checksum matched, so these bytes were written like this: not a torn tail.
            raise WALError(f"{path}: offset {pos}: {exc}") from None
        end = record_end
    last = len(entries)
    hs = out.hard_state
    if hs.commit > last:  # cannot happen with entries-before-hard-state; keep it safe anyway
        out.hard_state = HardState(term=hs.term, vote=hs.vote, commit=last)
    return out, end


def records(data: bytes | bytearray, pos: int = 0) -> Iterator[tuple[int, int, bytes, bytes]]:
    """(offset, end, kind, payload) of each intact record from `pos` on. Stops at zeros (the
    end of the log) or at a torn or corrupt record, whatever follows it."""
    end = len(data)
    while end - pos >= _HEADER.size:  # else a torn header
        size, crc = _HEADER.unpack_from(data, pos)
        start = pos + _HEADER.size
        body = bytes(data[start : start + size])
        if size == 0 or len(body) < size or zlib.crc32(body) != crc:
            return  # zeros (the end), or a torn or corrupt record: the rest is discarded
        yield pos, start + size, body[:1], body[1:]
        pos = start + size

"""A node's snapshot file: the state machine after its last included entry, checksummed.

    DATA_DIR/snapshot = MAGIC | index, term, body length (3 x 8 bytes BE) | crc32 of those |
                        body in blocks of BLOCK bytes, each preceded by its crc32

The encoded file is also what a leader sends a follower (InstallSnapshot, raft.py), so a
follower checks a received snapshot exactly as a node checks its own file at start.

Rules it keeps:
- `write` is atomic and durable: the bytes go to `snapshot.tmp`, which is fsynced, renamed over
  `snapshot`, and the directory fsynced; a crash at any point leaves the old snapshot or the
  new one whole, never a mix (a leftover `snapshot.tmp` is removed at the next start).
- `decode` refuses anything but a whole, checksummed snapshot: `SnapshotError` names the file
  and the offset of the damaged part (the header, or the block whose checksum fails), as the
  WAL does for a damaged record. A node never starts from a damaged snapshot: the entries it
  replaced are gone from its log.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from splitbrain.raft.codec import MAX_COUNTER
from splitbrain.raft.host import FileSystem, replace_file, tmp_path
from splitbrain.raft.messages import Entry
from splitbrain.raft.wal import WAL, Recovered, WALError, after_snapshot

FILE_NAME = "snapshot"
MAGIC = b"splitbrain-snapshot-1\n"
BLOCK = 64 * 1024
_HEAD = struct.Struct(">QQQ")  # index, term, body length
_CRC = struct.Struct(">I")


class SnapshotError(WALError):
    """A snapshot that is not whole (names the file and the offset); a node refuses to start
    on it as on a damaged log."""


@dataclass(frozen=True, slots=True)
class Decoded:
    index: int
    term: int
    body: bytes  # the state machine's encoding (kv.KV.state())


def encode(index: int, term: int, body: bytes) -> bytes:
    head = _HEAD.pack(index, term, len(body))
    parts = [MAGIC, head, _CRC.pack(zlib.crc32(head))]
    for at in range(0, len(body), BLOCK):
        block = body[at : at + BLOCK]
        parts += [_CRC.pack(zlib.crc32(block)), block]
    return b"".join(parts)


def decode(data: bytes, path: Path | str = "<snapshot>") -> Decoded:
    """The snapshot `data` encodes; SnapshotError (file, offset, problem) if it is damaged."""
    def fail(offset: int, problem: str) -> SnapshotError:
        return SnapshotError(f"{path}: offset {offset}: corrupt snapshot: {problem}; refusing "
                             "to start from it")

    if not data.startswith(MAGIC):
        raise fail(0, "no snapshot header")
    pos = len(MAGIC)
    if len(data) < pos + _HEAD.size + _CRC.size:
        raise fail(pos, "truncated header")
    head = data[pos : pos + _HEAD.size]
    (crc,) = _CRC.unpack_from(data, pos + _HEAD.size)
    if zlib.crc32(head) != crc:
        raise fail(pos, "the header fails its checksum")
    index, term, size = _HEAD.unpack(head)
    if not 1 <= index <= MAX_COUNTER or term > MAX_COUNTER:
        raise fail(pos, f"index {index} or term {term} out of range")
    pos += _HEAD.size + _CRC.size
    blocks = []
    left = size
    while left:
        n = min(left, BLOCK)
        if len(data) < pos + _CRC.size + n:
            raise fail(pos, f"truncated: {size} body bytes announced")
        (crc,) = _CRC.unpack_from(data, pos)
        block = data[pos + _CRC.size : pos + _CRC.size + n]
        if zlib.crc32(block) != crc:
            raise fail(pos, "a block fails its checksum")
        blocks.append(block)
        pos += _CRC.size + n
        left -= n
    if pos != len(data):
        raise fail(pos, f"{len(data) - pos} bytes after the snapshot")
    return Decoded(index, term, b"".join(blocks))


def peek(data: bytes | bytearray) -> tuple[int, int] | None:
    """(index, term) of a snapshot's checksummed header, or None: for readers of a node's
    bytes other than its recovery (the simulator's invariants)."""
    pos = len(MAGIC)
    if not data.startswith(MAGIC) or len(data) < pos + _HEAD.size + _CRC.size:
        return None
    head = bytes(data[pos : pos + _HEAD.size])
    if zlib.crc32(head) != _CRC.unpack_from(data, pos + _HEAD.size)[0]:
        return None
    index, term, _ = _HEAD.unpack(head)
    return index, term


def write(files: FileSystem, directory: Path, data: bytes, *, fsync: bool = True) -> None:
    """Replace the snapshot in `directory` with `data` (an `encode`d snapshot), atomically and
    durably (see the module's rules)."""
    replace_file(files, directory / FILE_NAME, data, fsync=fsync).close()


def read(files: FileSystem, directory: Path) -> tuple[Decoded, bytes] | None:
    """The snapshot in `directory` and its encoded bytes, or None if there is none; removes a
    leftover `snapshot.tmp`. SnapshotError if it is damaged."""
    path = directory / FILE_NAME
    files.remove(tmp_path(path))
    if not files.exists(path):
        return None
    file = files.open(path)
    try:
        data = file.read()
    finally:
        file.close()
    return decode(data, path), data


def check(index: int, term: int, data: bytes) -> bool:
    """Whether `data` is a whole snapshot of (index, term) (a follower's check of what a
    leader sent)."""
    try:
        decoded = decode(data)
    except SnapshotError:
        return False
    return (decoded.index, decoded.term) == (index, term)


def resume(files: FileSystem, directory: Path, wal: WAL, recovered: Recovered
           ) -> tuple[tuple[Decoded, bytes] | None, list[Entry]]:  # fmt: skip
    """What a restarted node starts from: its snapshot (None if it has none) and the log after
    it (`log_after`), with the WAL made to start after the snapshot if a crash came between the
    two steps of a snapshot. Without that, the log on disk would still hold the entries before
    the snapshot, and the first entry this life appends after an installed snapshot (beyond the
    log's end) would leave a gap that the next restart refuses. WALError as `log_after`."""
    loaded = read(files, directory)
    entries = log_after(recovered, loaded, directory)
    if loaded is not None and loaded[0].index > recovered.snapshot[0]:
        wal.compact(loaded[0].index, loaded[0].term)
    return loaded, entries


def log_after(recovered: Recovered, loaded: tuple[Decoded, bytes] | None,
              directory: Path) -> list[Entry]:  # fmt: skip
    """The log a node restarts with: the recovered WAL's entries that follow the snapshot
    (`wal.after_snapshot`: a crash between writing the snapshot and compacting the log leaves
    entries the snapshot covers). WALError if the two cannot be one log: the log starts after
    an entry no snapshot holds."""
    mark = recovered.snapshot[0]
    if loaded is None:
        if mark:
            raise WALError(f"{directory / 'raft.wal'}: the log starts after entry {mark}, but "
                           f"{directory / FILE_NAME} is missing")
        return recovered.entries
    decoded = loaded[0]
    if mark > decoded.index:
        raise WALError(f"{directory / FILE_NAME}: offset 0: snapshot of entry {decoded.index} "
                       f"is older than the log, which starts after {mark}")
    return after_snapshot(recovered.entries, decoded.index, decoded.term)

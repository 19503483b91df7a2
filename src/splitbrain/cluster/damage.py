"""Damage to a stopped node's files, as a bad disk does it: a flipped bit, or a file cut short.

    done = damage(root, seed)       # None if no file under root holds anything
    repair(Files(root), done)       # undoes it: the bit flipped back, the cut bytes written back
    draw(extents, seed, media)      # the same on files that are not real (sim/disk.py)

The file is drawn from the regular files under `root` that hold a byte other than zero (sorted
by path, so a seed names one choice); then the kind: one time in TRUNCATE_ONE_IN the file is
truncated, else one bit flips. The offset is drawn uniformly below the file's last byte other
than zero — a preallocated file's zeros beyond its data are nothing a program reads as data —
and a cut leaves at least one byte (an empty file reads as one never written, which no check
can tell apart). What was done is a record (file relative to root, kind, offset; a flip's bit
and the byte before and after; a cut's size before and the bytes of data it removed) for the
nemesis's history; a cut's removed bytes are kept in it for the repair. Pure but for the
write.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

TRUNCATE_ONE_IN = 3  # of the damage drawn, truncations (the rest are bit flips)


@dataclass(frozen=True, slots=True)
class Damage:
    file: str  # relative to the root it was drawn under
    offset: int  # flip: the byte hit; truncate: the file's length after the cut
    kind: Literal["flip", "truncate"] = "flip"
    bit: int = 0  # flip: the bit, the byte before and after
    before: int = 0
    after: int = 0
    size: int = 0  # truncate: the file's length before the cut
    tail: bytes = field(default=b"", repr=False)  # truncate: the data cut off (for repair)

    def to_json(self) -> dict[str, Any]:
        if self.kind == "flip":
            return {"file": self.file, "kind": "flip", "offset": self.offset, "bit": self.bit,
                    "before": self.before, "after": self.after}
        return {"file": self.file, "kind": "truncate", "offset": self.offset,
                "size": self.size, "cut": len(self.tail)}


class Media(Protocol):
    """Where the damage is done (real files under a root, or a simulated disk's)."""

    def flip(self, file: str, offset: int, bit: int) -> int: ...  # returns the byte before
    def cut(self, file: str, offset: int) -> tuple[int, bytes]: ...  # size before, data cut
    def restore(self, file: str, offset: int, tail: bytes, size: int) -> None: ...


def damage(root: Path, seed: int) -> Damage | None:
    """Damage a file under `root`, drawn from `seed`; None if there is nothing to hit."""
    paths = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    extents = {str(p.relative_to(root)): extent(p.read_bytes()) for p in paths}
    return draw(extents, seed, Files(root))


def draw(extents: Mapping[str, int], seed: int, media: Media) -> Damage | None:
    """Draw from `seed` a file among `extents` (each file's `extent`, in the order to draw
    from), the kind of damage and an offset below its extent (and a bit), and do it on
    `media`; None if no file holds anything."""
    files = [file for file, end in extents.items() if end]
    if not files:
        return None
    rng = random.Random(seed)
    file = rng.choice(files)
    end = extents[file]
    if rng.randrange(TRUNCATE_ONE_IN) == 0 and end > 1:
        offset = rng.randrange(1, end)
        size, tail = media.cut(file, offset)
        return Damage(file, offset, "truncate", size=size, tail=tail)
    offset, bit = rng.randrange(end), rng.randrange(8)
    before = media.flip(file, offset, bit)
    return Damage(file, offset, "flip", bit, before, before ^ (1 << bit))


def extent(data: bytes | bytearray) -> int:
    """The bytes of a file up to its last one other than zero."""
    return len(data.rstrip(b"\0"))


def repair(media: Media, done: Damage) -> None:
    """Undo `done` on `media`: flip the bit back, or write the cut data back up to the size."""
    if done.kind == "flip":
        media.flip(done.file, done.offset, done.bit)
    else:
        media.restore(done.file, done.offset, done.tail, done.size)


@dataclass(frozen=True, slots=True)
class Files:
    """Real files under a root."""

    root: Path

    def flip(self, file: str, offset: int, bit: int) -> int:
        with (self.root / file).open("r+b") as f:
            f.seek(offset)
            byte = f.read(1)[0]
            f.seek(offset)
            f.write(bytes([byte ^ (1 << bit)]))
        return byte

    def cut(self, file: str, offset: int) -> tuple[int, bytes]:
        with (self.root / file).open("r+b") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(offset)
            tail = f.read().rstrip(b"\0")
            f.truncate(offset)
        return size, tail

    def restore(self, file: str, offset: int, tail: bytes, size: int) -> None:
        with (self.root / file).open("r+b") as f:
            f.seek(offset)
            f.write(tail)
            f.truncate(size)

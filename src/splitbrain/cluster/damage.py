"""Damage to a stopped node's files, as a bad disk does it: one flipped bit at a seeded place.

    done = damage(root, seed)       # None if no file under root holds anything
    repair(root, done)              # flips the same bit back
    draw(extents, seed, flip)       # the same on files that are not real (sim/disk.py)

The file is drawn from the regular files under `root` that hold a byte other than zero (sorted
by path, so a seed names one choice), the offset uniformly below the file's last such byte — a
preallocated file's zeros beyond its data are nothing a program reads as data — and the bit
uniformly. What was done is a record (file relative to root, offset, bit, the byte before and
after) for the nemesis's history. Pure but for the one byte written.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Damage:
    file: str  # relative to the root it was drawn under
    offset: int
    bit: int
    before: int  # the byte, before and after
    after: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def damage(root: Path, seed: int) -> Damage | None:
    """Flip one bit of a file under `root`, drawn from `seed`; None if there is nothing to hit."""
    paths = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    extents = {str(p.relative_to(root)): extent(p.read_bytes()) for p in paths}
    return draw(extents, seed, lambda file, offset, bit: _flip(root / file, offset, bit))


def draw(extents: Mapping[str, int], seed: int,
         flip: Callable[[str, int, int], int]) -> Damage | None:  # fmt: skip
    """Draw from `seed` a file among `extents` (each file's `extent`, in the order to draw
    from), an offset below its extent and a bit, and `flip(file, offset, bit)` it (it returns
    the byte before); None if no file holds anything."""
    files = [file for file, end in extents.items() if end]
    if not files:
        return None
    rng = random.Random(seed)
    file = rng.choice(files)
    offset, bit = rng.randrange(extents[file]), rng.randrange(8)
    before = flip(file, offset, bit)
    return Damage(file, offset, bit, before, before ^ (1 << bit))


def extent(data: bytes | bytearray) -> int:
    """The bytes of a file up to its last one other than zero."""
    return len(data.rstrip(b"\0"))


def repair(root: Path, done: Damage) -> None:
    """Undo `done` (flip the bit back)."""
    _flip(root / done.file, done.offset, done.bit)


def _flip(path: Path, offset: int, bit: int) -> int:
    with path.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ (1 << bit)]))
    return byte

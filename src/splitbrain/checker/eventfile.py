"""Reading a node's events.jsonl (DESIGN.md, "Node events") a block at a time, in bounded memory.

    events = EventFile(path)
    for batch in events.batches():      # HistoryError (`file:line: problem`) on a bad line
        for number, event in zip(batch.lines, batch.events): ...
    events.warnings                     # torn lines dropped

A node writes one line per applied entry, so over a long run its file grows to millions of
lines (five nodes wrote 527 MiB in an hour): it is never read whole. Each block of BLOCK bytes of
whole lines is decoded by msgspec into `Event` records in C (only the fields the checkers read).
A block that does not decode at once — a blank line, a line torn by a kill, a bad line — is read
line by line: a torn last line is dropped with a warning, and so is a torn line that the node's
next life ended before its `start` event (raft/host.py); any other bad line is a HistoryError
naming the file and the line.
"""

from __future__ import annotations

import bisect
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

import msgspec

from splitbrain.history import HistoryError

BLOCK = 8 << 20  # bytes read at a time (whole lines: a longer line makes a longer block)


class Event(msgspec.Struct, gc=False):
    """The fields of an event line the checkers read; the rest are skipped while decoding."""

    event: Any = None
    index: Any = None
    term: Any = None
    id: Any = None
    role: Any = None
    repeat: Any = None
    vote: Any = None
    commit: Any = None
    time: Any = None
    rule: Any = None
    digest: Any = None
    kind: Any = None
    crc: Any = None
    first: Any = None  # stored, recovered: the log (commit_safety.py)
    last: Any = None
    terms: Any = None
    snapshot: Any = None
    snapshot_term: Any = None
    asked: Any = None  # read: when it reached the node (read_safety.py)
    clock: Any = None  # start: "machine" if no clock fault skews its life's event times


_DECODER = msgspec.json.Decoder(Event)
_FIELDS = Event.__struct_fields__


@dataclass(frozen=True, slots=True)
class Batch:
    """Events decoded from one block: `lines[i]` is the line of `events[i]`, and `raw(i)` the
    whole JSON object of that line (an invariant event keeps every field it has)."""

    events: Sequence[Event]
    lines: Sequence[int]
    raw: Callable[[int], Any]


class EventFile:
    """`lenient`: a bad line is skipped, not an error (the report shows what it can read)."""

    def __init__(self, path: str | os.PathLike[str], lenient: bool = False) -> None:
        self.path = path
        self.name = str(path)
        self.lenient = lenient
        self.warnings: list[str] = []

    def batches(self) -> Iterator[Batch]:
        """The file's events, block by block, in order."""
        try:
            file = open(self.path, "rb")  # noqa: SIM115 (closed below; errors are named)
        except OSError as exc:
            raise HistoryError(self.name, None, f"cannot read: {exc.strerror or exc}") from None
        with file:
            blocks = _blocks(file, self.name)
            current = next(blocks, None)
            while current is not None:
                following = next(blocks, None)
                yield self._decode(*current, following)
                current = following

    def _decode(self, block: bytes, first: int, following: tuple[bytes, int] | None) -> Batch:
        try:
            events = _DECODER.decode_lines(block)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            events = None
        if events is not None and len(events) == block.count(b"\n") + (not block.endswith(b"\n")):
            lines: list[bytes] = []  # split only if an event is asked for whole

            def raw(i: int) -> Any:
                if not lines:
                    lines.extend(block.split(b"\n"))
                return json.loads(lines[i])

            return Batch(events, range(first, first + len(events)), raw)
        return self._decode_slowly(block, first, following)

    def _decode_slowly(self, block: bytes, first: int, following: tuple[bytes, int] | None
                       ) -> Batch:  # fmt: skip
        """The block line by line: exact line numbers, the bad line named, a torn one dropped."""
        text = block.decode("utf-8", errors="replace")
        lines = text.split("\n")
        numbers = [first + k for k, raw in enumerate(lines) if raw.strip()]
        try:
            objs = json.loads("[" + ",".join(lines[n - first] for n in numbers) + "]")
        except json.JSONDecodeError:
            objs, kept = [], []
            for number in numbers:
                try:
                    objs.append(json.loads(lines[number - first]))
                except json.JSONDecodeError as exc:
                    if number - first == len(lines) - 1 and following is None:
                        self.warnings.append(f"{self.name}:{number}: torn last line dropped "
                                             f"(node killed mid-write)")
                        break
                    if _starts_a_life(lines, numbers, number - first, first, following):
                        self.warnings.append(f"{self.name}:{number}: torn line dropped (node "
                                             f"killed mid-write, then restarted)")
                        continue
                    if self.lenient:
                        continue
                    raise HistoryError(self.name, number, f"bad JSON: {exc.msg}") from None
                kept.append(number)
            numbers = kept
        pairs = [(n, obj) for n, obj in zip(numbers, objs, strict=True) if type(obj) is dict]
        if len(pairs) < len(objs) and not self.lenient:
            number = next(n for n, obj in zip(numbers, objs, strict=True) if type(obj) is not dict)
            raise HistoryError(self.name, number, "expected a JSON object")
        events = [Event(**{k: obj.get(k) for k in _FIELDS}) for _, obj in pairs]
        return Batch(events, [n for n, _ in pairs], lambda i: pairs[i][1])


def _blocks(file: IO[bytes], name: str) -> Iterator[tuple[bytes, int]]:
    """Blocks of whole lines, each with the number of its first line; the last block ends
    where the file does (with or without a newline). A line longer than a block is gathered
    in pieces and joined once (never copied again for each piece)."""
    number, pending = 1, []  # pending: the start of a line no block has ended yet
    while True:
        try:
            data = file.read(BLOCK)
        except OSError as exc:
            raise HistoryError(name, number, f"cannot read: {exc.strerror or exc}") from None
        if not data:
            break
        cut = data.rfind(b"\n") + 1
        if not cut:
            pending.append(data)
            continue
        block = b"".join([*pending, data[:cut]])  # data itself when nothing is pending
        pending = [data[cut:]] if cut < len(data) else []
        yield block, number
        number += block.count(b"\n")
    if pending:
        yield b"".join(pending), number


def _starts_a_life(lines: list[str], numbers: list[int], at: int, first: int,
                   following: tuple[bytes, int] | None) -> bool:  # fmt: skip
    """Whether the first non-blank line after line `at` of this block (or, if it has none, of
    the next block) is a `start` event: a node killed in the middle of writing a line,
    restarted, ended that torn line before its first event (host.py)."""
    later = bisect.bisect_right(numbers, first + at)
    if later < len(numbers):
        text = lines[numbers[later] - first]
    elif following is not None:
        text = next((raw for raw in following[0].split(b"\n") if raw.strip()), b"").decode(
            "utf-8", errors="replace")
    else:
        return False
    try:
        event = json.loads(text)
    except json.JSONDecodeError:
        return False
    return type(event) is dict and event.get("event") == "start"

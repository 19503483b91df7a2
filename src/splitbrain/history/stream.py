"""history.jsonl straight to calls: the reader the checker uses on large histories.

The file is read in blocks of whole lines; msgspec decodes each block into typed records in C
(every field's type checked there) and the compiled pairer (_core.c) checks the
invoke/complete discipline and pairs invocations with completions in the same pass, so no
Python code runs per line and no Op is made for a client line. msgspec, not orjson: it
decodes straight into typed records (orjson gives dicts to check field by field in Python),
keeps integers exact where orjson turns a 20-digit one into a float, and measured faster on
our lines (bench/checker.py reports both).

Errors keep read_jsonl's contract: the fast path only notices that something is wrong, then
read_jsonl rereads the file and names it (`file:line: problem`); whatever read_jsonl accepts
is the answer, so the fast path may be stricter than needed but never more lenient. A torn
last line is dropped with the same warning. Without the compiled core, read_jsonl and
pair_calls do the whole job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from splitbrain.gcpause import paused
from splitbrain.history.calls import Call, pair_calls
from splitbrain.history.errors import HistoryError
from splitbrain.history.jsonl import MAX_DEPTH, read_jsonl
from splitbrain.history.ops import History, Op

try:
    from splitbrain import _core
except ImportError:  # pragma: no cover - a machine without a C compiler
    _core = None

# Bytes decoded at once: memory stays bounded by a block, not the file, and a block's decoded
# lines (about 2,500) are still in the cache when the pairer reads them, their memory reused by
# the next block's: reading took half the time it took with blocks of 8 MiB.
BLOCK = 256 << 10


class _Line(msgspec.Struct, gc=False):
    index: int
    time: int
    process: int | str
    type: Literal["invoke", "ok", "fail", "info"]
    f: str
    key: str | None = None
    value: Any = None
    node: str | None = None
    error: Any = None
    request: Any = None


_DECODER = msgspec.json.Decoder(_Line)
_ANY = msgspec.json.Decoder()
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)


@dataclass(frozen=True, slots=True)
class Calls:
    """What the checkers need of a history: its calls and its nemesis ops."""

    calls: list[Call]  # in invoke order
    nemesis: tuple[Op, ...]  # their known fields (the fast path keeps no unknown ones)
    source: str
    format: str = "jsonl"  # as History.format
    warnings: tuple[str, ...] = ()


class _Stricter(Exception):
    """The fast path saw something it does not take; read_jsonl decides."""


def read_calls(path: str | os.PathLike[str]) -> Calls:
    """The calls of a history.jsonl file. Raises HistoryError (`file:line: problem`)."""
    name = str(path)
    if _core is not None:
        try:
            with paused():
                return _fast(path, name)
        except _Stricter:
            pass
        except OSError as exc:
            raise HistoryError(name, None, f"cannot read: {exc.strerror or exc}") from None
    with paused():
        return from_history(read_jsonl(path))


def from_history(history: History) -> Calls:
    return Calls(pair_calls(history.ops), history.nemesis_ops, history.source, history.format,
                 history.warnings)


def _fast(path: str | os.PathLike[str], name: str) -> Calls:
    pairer = _core.Pairer(Call, _Line, MAX_DEPTH)
    warnings: list[str] = []
    with open(path, "rb") as f:
        tail = b""
        while block := f.read(BLOCK):
            data = tail + block
            cut = data.rfind(b"\n") + 1
            tail = data[cut:]
            if cut:
                _feed(pairer, memoryview(data)[:cut])
        if tail.strip():
            try:
                _ANY.decode(tail)
            except _DECODE_ERRORS:
                f.seek(0)
                lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(BLOCK), b""))
                warnings.append(f"{name}:{lines + 1}: torn last line dropped "
                                "(the writer was killed mid-line)")
            else:
                _feed(pairer, tail)
    calls, nemesis = pairer.finish()
    ops = tuple(Op(n.index, n.time, n.process, n.type, n.f, n.value, n.key, n.node, n.error,
                   {} if n.request is None else {"request": n.request}) for n in nemesis)
    return Calls(calls, ops, name, "jsonl", tuple(warnings))


def _feed(pairer: Any, data: Any) -> None:
    try:
        decoded = _DECODER.decode_lines(data)
    except _DECODE_ERRORS:
        raise _Stricter from None
    if pairer.feed(decoded) is not None:
        raise _Stricter

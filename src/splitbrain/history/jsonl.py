"""history.jsonl: a validating reader and an append-and-flush writer.

The reader checks every line against the DESIGN.md contract and stops at the first problem with a
`HistoryError` naming the file and line. One thing is tolerated: a torn last line (no trailing
newline, not valid JSON), which is what a driver killed mid-write leaves; it is dropped with a
warning so that the evidence before it can still be checked.

JSON is read strictly: NaN and Infinity (which Python's json accepts and no JSON writer should
produce), numbers too large for a float, integers over 4300 digits and values nested deeper
than MAX_DEPTH are each a `file:line` error, so nothing downstream meets a value it cannot
compare, print or walk. history/stream.py is the fast reader with the same contract.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import IO, Any

from splitbrain.history.errors import HistoryError
from splitbrain.history.ops import NEMESIS, OP_TYPES, History, Op
from splitbrain.history.validate import PairingCheck

_KNOWN = frozenset({"index", "time", "process", "type", "f", "key", "value", "node", "error"})
MAX_DEPTH = 100  # containers inside a value; real histories nest two or three


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed (non-finite numbers are not JSON)")


def _finite(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):
        raise ValueError(f"number {text[:20]} is too large for a float")
    return value


def _decode(raw: str) -> Any:
    """One line's JSON, strictly; ValueError says what is wrong."""
    try:
        return json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise ValueError(f"bad JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise ValueError("bad JSON: nested too deeply") from None
    except ValueError as exc:  # NaN, a huge float, an integer over 4300 digits
        problem = str(exc).split(";")[0].split(":")[0]
        raise ValueError(f"bad JSON: {problem}") from None


def _depth_ok(value: Any, room: int = MAX_DEPTH) -> bool:
    if isinstance(value, list):
        return room > 0 and all(_depth_ok(v, room - 1) for v in value)
    if isinstance(value, dict):
        return room > 0 and all(_depth_ok(v, room - 1) for v in value.values())
    return True


def _int(obj: dict[str, Any], name: str) -> int:
    value = obj[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"field {name!r} must be an integer, got {json.dumps(value)}")
    return value


def _op_from_json(obj: Any, expected_index: int) -> Op:
    """One op from one decoded line; raises ValueError with the problem."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    for name in ("index", "time", "process", "type", "f"):
        if name not in obj:
            raise ValueError(f"missing field {name!r}")
    index = _int(obj, "index")
    if index != expected_index:
        raise ValueError(f"index is {index}, expected {expected_index} (its position in the file)")
    time = _int(obj, "time")
    if time < 0:
        raise ValueError(f"time must not be negative, got {time}")
    process = obj["process"]
    if process != NEMESIS and (not isinstance(process, int) or isinstance(process, bool)):
        raise ValueError(f"process must be an integer or \"nemesis\", got {json.dumps(process)}")
    op_type = obj["type"]
    if op_type not in OP_TYPES:
        raise ValueError(f"unknown type {json.dumps(op_type)} (expected invoke, ok, fail or info)")
    f = obj["f"]
    if not isinstance(f, str) or not f:
        raise ValueError(f"field 'f' must be a non-empty string, got {json.dumps(f)}")
    key = obj.get("key")
    if key is not None and not isinstance(key, str):
        raise ValueError(f"field 'key' must be a string, got {json.dumps(key)}")
    node = obj.get("node")
    if node is not None and not isinstance(node, str):
        raise ValueError(f"field 'node' must be a string, got {json.dumps(node)}")
    extra = {k: v for k, v in obj.items() if k not in _KNOWN}
    value, error = obj.get("value"), obj.get("error")
    return Op(index, time, process, op_type, f, value, key, node, error, extra)


def read_jsonl(path: str | os.PathLike[str]) -> History:
    """Read and validate a history.jsonl file. Raises HistoryError on the first bad line."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise HistoryError(name, None, f"cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise HistoryError(name, line, "not valid UTF-8") from None
    lines = text.split("\n")
    complete_tail = text.endswith("\n") or not text
    ops: list[Op] = []
    warnings: list[str] = []
    pairing = PairingCheck()
    last_time = 0
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = _decode(raw)
        except ValueError as exc:
            if number == len(lines) and not complete_tail:
                warnings.append(
                    f"{name}:{number}: torn last line dropped (the writer was killed mid-line)"
                )
                break
            raise HistoryError(name, number, str(exc)) from None
        try:
            if isinstance(obj, dict) and not _depth_ok(obj, MAX_DEPTH + 1):
                raise ValueError(f"a value nested more than {MAX_DEPTH} deep")
            op = _op_from_json(obj, len(ops))
            if op.time < last_time:
                raise ValueError(f"time goes backwards ({op.time} after {last_time})")
            pairing.check(op, number)
        except ValueError as exc:
            raise HistoryError(name, number, str(exc)) from None
        last_time = op.time
        ops.append(op)
    return History(tuple(ops), source=name, format="jsonl", warnings=tuple(warnings))


class HistoryWriter:
    """Appends ops to history.jsonl, one flushed line each, so a killed run leaves evidence."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file: IO[str] = self.path.open("a", encoding="utf-8")
        self._next = 0

    def record(
        self,
        time: int,
        process: int | str,
        type: str,
        f: str,
        value: Any = None,
        *,
        key: str | None = None,
        node: str | None = None,
        error: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> Op:
        """Append one op with the next index and return it. `extra` adds optional fields."""
        op = Op(
            self._next, time, process, type, f, value,  # type: ignore[arg-type]
            key, node, error, extra or {},
        )
        self._file.write(json.dumps(op.to_json(), separators=(",", ":")) + "\n")
        self._file.flush()
        self._next += 1
        return op

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

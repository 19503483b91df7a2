"""Porcupine's etcd logs (Jepsen 0.1 console output against etcd 2.0): one op per line.

    INFO  jepsen.util - 3	:invoke	:cas	[1 4]
    INFO  jepsen.util - 3	:fail	:read	:timed-out

Fields are separated by tabs or runs of spaces. A keyword in the value position of a completion
(`:timed-out`) is its error, not a value. There are no times: an op's time is its line order,
which is the order Jepsen logged it in. Porcupine's kv logs are Jepsen EDN (see edn.py).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from splitbrain.history.errors import HistoryError
from splitbrain.history.ops import History, Op
from splitbrain.history.validate import validate

_LINE = re.compile(r"INFO\s+jepsen\.util\s+-\s+(\d+)\s+:(\w+)\s+:([\w-]+)\s*(.*?)\s*")
_VECTOR = re.compile(r"\[\s*(.*?)\s*\]")


def _scalar(text: str, name: str, line: int) -> Any:
    if text == "nil":
        return None
    try:
        return int(text)
    except ValueError:
        raise HistoryError(name, line, f"cannot read value {text!r}") from None


def parse_etcd_log(text: str, name: str = "<etcd log>") -> History:
    """A history from the text of one etcd log."""
    ops: list[Op] = []
    lines: list[int] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        m = _LINE.fullmatch(raw)
        if m is None:
            raise HistoryError(name, number, "not a 'INFO jepsen.util - P :type :f value' line")
        process, op_type, f, rest = int(m[1]), m[2], m[3], m[4]
        if op_type not in ("invoke", "ok", "fail", "info"):
            raise HistoryError(name, number, f"unknown type :{op_type}")
        value: Any = None
        error: Any = None
        if rest.startswith(":"):
            error = rest[1:]
        elif (vec := _VECTOR.fullmatch(rest)) is not None:
            value = [_scalar(part, name, number) for part in vec[1].split()]
        elif rest:
            value = _scalar(rest, name, number)
        ops.append(Op(len(ops), len(ops), process, op_type, f, value, None, None, error))  # type: ignore[arg-type]
        lines.append(number)
    validate(ops, name, lines)
    return History(tuple(ops), source=name, format="porcupine-etcd")


def read_etcd_log(path: str | os.PathLike[str]) -> History:
    """Read one of Porcupine's jepsen/etcd_NNN.log files."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HistoryError(name, None, f"cannot read: {exc}") from None
    return parse_etcd_log(text, name)

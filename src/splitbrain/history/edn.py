"""Jepsen EDN histories: a vector or list of op maps, or a bare stream of them.

Only the part of EDN that Jepsen histories use is read: maps, vectors, lists, sets, strings,
keywords, symbols (nil, true, false), integers and floats, `;` comments, `#_` discards and tagged
literals (`#inst "..."`, whose tag is dropped). A small reader of our own rather than a general
EDN library: it reports `file:line: problem` for every error (edn_format reports no line) and
is about twice as fast. Nemesis ops (`:process :nemesis`) are kept; the checker skips them.

Jepsen's independent histories carry the key inside the value: `:value [k v]` (or the record
`#jepsen.independent.Tuple{:key k :value v}`). When every client op of a history without
`:key` is such a tuple (a cas's v then being a pair itself), each is unpacked into key and
value, so each key is checked on its own as Jepsen's independent checker does.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from splitbrain.history.errors import HistoryError
from splitbrain.history.ops import NEMESIS, History, Op
from splitbrain.history.validate import validate

_TOKEN = re.compile(
    r"""(?P<ws>[\s,]+|;[^\n]*)
      | (?P<str>"(?:[^"\\]|\\.)*")
      | (?P<open>\#\{|[\[({])
      | (?P<close>[\])}])
      | (?P<discard>\#_)
      | (?P<tag>\#[A-Za-z][\w.\-/]*)
      | (?P<atom>[^\s,;"\[\](){}]+)
    """,
    re.VERBOSE | re.DOTALL,
)
_INT = re.compile(r"[+-]?\d+N?")
_FLOAT = re.compile(r"[+-]?\d+(\.\d*)?([eE][+-]?\d+)?M?")
_CLOSERS = {"[": "]", "(": ")", "{": "}", "#{": "}"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "b": "\b", "f": "\f"}


class _Keyword(str):
    """An EDN keyword, told apart from a string while an op map is converted."""


def _atom(text: str) -> Any:
    if text == "nil":
        return None
    if text == "true":
        return True
    if text == "false":
        return False
    if text.startswith(":"):
        return _Keyword(text[1:])
    if _INT.fullmatch(text):
        return int(text.rstrip("N"))
    if _FLOAT.fullmatch(text):
        return float(text.rstrip("M"))
    if text.startswith("\\"):
        return text[1:]  # a character literal
    return text  # any other symbol: its name


def _escape(m: re.Match[str]) -> str:
    code = m[1]
    if code[0] == "u" and len(code) == 5:
        return chr(int(code[1:], 16))
    return _ESCAPES.get(code, code)


def _string(text: str) -> str:
    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", _escape, text[1:-1], flags=re.DOTALL)


class _Reader:
    """Recursive descent over the token list; every error names the line it is on."""

    def __init__(self, text: str, name: str) -> None:
        self.name = name
        self.tokens = _tokens(text, name)
        self.pos = 0

    def error(self, problem: str, line: int | None = None) -> HistoryError:
        if line is None:
            line = self.tokens[min(self.pos, len(self.tokens)) - 1][2] if self.tokens else 1
        return HistoryError(self.name, line, problem)

    def _token(self) -> tuple[str, str, int] | None:
        if self.pos >= len(self.tokens):
            return None
        self.pos += 1
        return self.tokens[self.pos - 1]

    def form(self, token: tuple[str, str, int] | None = None) -> tuple[Any, int]:
        """The next form and the line it starts on; raises at the end of input."""
        token = token or self._token()
        if token is None:
            raise self.error("unexpected end of input")
        kind, text, line = token
        if kind == "str":
            return _string(text), line
        if kind == "atom":
            return _atom(text), line
        if kind == "tag":
            return self.form()
        if kind == "discard":
            self.form()
            return self.form()
        if kind == "close":
            raise self.error(f"unexpected {text!r}", line)
        items = [item for item, _ in self._items(text, line)]
        if text == "{":
            if len(items) % 2:
                raise self.error("a map with an odd number of forms", line)
            try:
                return dict(zip(items[::2], items[1::2], strict=True)), line
            except TypeError:
                raise self.error("a map key that is a collection", line) from None
        return items, line

    def top_level(self) -> list[tuple[Any, int]]:
        """The op maps with their lines: the items of one outer vector/list, or a stream."""
        first = self._token()
        if first is None:
            return []
        if first[0] == "open" and first[1] in ("[", "("):
            items = self._items(first[1], first[2])
            if self._token() is not None:
                raise self.error("more forms after the history's closing bracket")
            return items
        out = [self.form(first)]
        while (token := self._token()) is not None:
            out.append(self.form(token))
        return out

    def _items(self, opener: str, line: int) -> list[tuple[Any, int]]:
        """The forms inside a collection just opened, each with its line."""
        closer = _CLOSERS[opener]
        items = []
        while True:
            inner = self._token()
            if inner is None:
                raise self.error(f"{opener!r} opened on line {line} is never closed")
            if inner[0] == "close":
                if inner[1] != closer:
                    raise self.error(f"expected {closer!r} to close {opener!r} from line {line}, "
                                     f"got {inner[1]!r}", inner[2])
                return items
            if inner[0] == "discard":
                self.form()
                continue
            items.append(self.form(inner))


def _tokens(text: str, name: str) -> list[tuple[str, str, int]]:
    """(kind, text, line) of every significant token."""
    out = []
    line = 1
    pos = 0
    for m in _TOKEN.finditer(text):
        if m.start() != pos:
            break
        pos = m.end()
        kind = m.lastgroup
        token = m[0]
        if kind != "ws":
            out.append((kind, token, line))
        if "\n" in token:
            line += token.count("\n")
    if pos != len(text):
        raise HistoryError(name, line, f"unexpected character {text[pos]!r}")
    return out


def _freeze(value: Any) -> Any:
    """EDN keywords become plain strings; collections stay lists (JSON-shaped)."""
    if isinstance(value, _Keyword):
        return str(value)
    if isinstance(value, list):
        return [_freeze(v) for v in value]
    if isinstance(value, dict):
        return {str(_freeze(k)): _freeze(v) for k, v in value.items()}
    return value


def _op(obj: Any, index: int, name: str, line: int) -> Op:
    if not isinstance(obj, dict):
        raise HistoryError(name, line, f"expected an op map, got {type(obj).__name__}")
    for field in ("process", "type", "f"):
        if field not in obj:
            raise HistoryError(name, line, f"op map has no :{field}")
    process = obj["process"]
    if isinstance(process, _Keyword) and process == NEMESIS:
        process = NEMESIS
    elif not isinstance(process, int) or isinstance(process, bool):
        raise HistoryError(name, line, f":process must be an integer or :nemesis, got {process!r}")
    op_type = obj["type"]
    if not isinstance(op_type, _Keyword) or op_type not in ("invoke", "ok", "fail", "info"):
        raise HistoryError(name, line, f"unknown :type {op_type!r}")
    f = obj["f"]
    if not isinstance(f, str):
        raise HistoryError(name, line, f":f must be a keyword, got {f!r}")
    time = obj.get("time", index)
    if not isinstance(time, int):
        raise HistoryError(name, line, f":time must be an integer, got {time!r}")
    key = obj.get("key")
    error = obj.get("error")
    return Op(index, time, process, str(op_type), str(f), _freeze(obj.get("value")),  # type: ignore[arg-type]
              None if key is None else str(_freeze(key)), None, _freeze(error))


def _tuple(value: Any) -> tuple[Any, Any] | None:
    """(key, value) of an independent tuple, else None."""
    if isinstance(value, list) and len(value) == 2:
        return value[0], value[1]
    if isinstance(value, dict) and value.keys() == {"key", "value"}:
        return value["key"], value["value"]
    return None


def unpack_independent(ops: list[Op]) -> list[Op]:
    """Ops with `[key value]` tuple values as keyed ops, if every client op is one."""
    client = [op for op in ops if not op.is_nemesis]
    if not client or any(op.key is not None for op in client):
        return ops
    for op in client:
        pair = _tuple(op.value)
        if pair is None or (op.f == "cas" and not isinstance(pair[1], list)):
            return ops  # a plain history: its cas values are [old new] themselves
    out = []
    for op in ops:
        if op.is_nemesis:
            out.append(op)
            continue
        key, value = _tuple(op.value)  # type: ignore[misc]
        out.append(Op(op.index, op.time, op.process, op.type, op.f, value, str(key), op.node,
                      op.error, op.extra))
    return out


def parse_edn(text: str, name: str = "<edn>") -> History:
    """A history from EDN text: one vector/list of op maps, or a stream of op maps."""
    items = _Reader(text, name).top_level()
    ops = unpack_independent([_op(obj, i, name, line) for i, (obj, line) in enumerate(items)])
    validate(ops, name, [line for _, line in items])
    return History(tuple(ops), source=name, format="jepsen-edn")


def read_edn(path: str | os.PathLike[str]) -> History:
    """Read a Jepsen EDN history file. Raises HistoryError (`file:line: problem`)."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise HistoryError(name, None, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise HistoryError(name, None, "not valid UTF-8") from None
    return parse_edn(text, name)

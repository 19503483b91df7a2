"""History formats and their detection: `load_history(path)` reads any supported file.

Detection looks at the content, not the name: the first significant line of history.jsonl is a
JSON object (`{"`), an etcd log line names `jepsen.util`, and anything starting with `{`, `[`,
`(` or a `;` comment is Jepsen EDN (Porcupine's kv logs are EDN op maps, one per line). An
empty file is an empty history (the checker calls it "unknown": nothing was observed).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path

from splitbrain.history.errors import HistoryError
from splitbrain.history.ops import History
from splitbrain.history.stream import Calls, from_history, read_calls

# format -> (module, reader): imported when a file of that format is read
READERS: dict[str, tuple[str, str]] = {
    "jsonl": ("splitbrain.history.jsonl", "read_jsonl"),
    "jepsen-edn": ("splitbrain.history.edn", "read_edn"),
    "porcupine-etcd": ("splitbrain.history.porcupine", "read_etcd_log"),
}
MARKER = "jepsen.util"  # what every line of a Porcupine etcd log names

# File names that `splitbrain check DIR` picks up when it walks a directory.
SUFFIXES = (".jsonl", ".edn", ".log", ".txt")


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format of a history file, from its first significant line."""
    name = str(path)
    try:
        with Path(path).open("rb") as f:
            head = f.read(4096)
    except OSError as exc:
        raise HistoryError(name, None, f"cannot read: {exc.strerror or exc}") from None
    for raw in head.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith('{"'):
            return "jsonl"
        if MARKER in line:
            return "porcupine-etcd"
        if line[0] in "{[(;#":
            return "jepsen-edn"
        raise HistoryError(name, 1, "unknown history format (expected history.jsonl, "
                                    "Jepsen EDN or a Porcupine etcd log)")
    return "jsonl"  # an empty file: every reader gives an empty history


def reader(fmt: str) -> Callable[[str | os.PathLike[str]], History]:
    module, name = READERS[fmt]
    return getattr(importlib.import_module(module), name)


def load_history(path: str | os.PathLike[str], fmt: str | None = None) -> History:
    """Read a history in any supported format (detected unless `fmt` names one)."""
    return reader(fmt or detect_format(path))(path)


def load_calls(path: str | os.PathLike[str], fmt: str | None = None) -> Calls:
    """The calls of a history in any supported format: what the checkers read. history.jsonl
    goes through the streaming reader (no Op per client line)."""
    fmt = fmt or detect_format(path)
    if fmt == "jsonl":
        return read_calls(path)
    return from_history(reader(fmt)(path))

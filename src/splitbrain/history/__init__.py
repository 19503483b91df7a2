"""The history: every invocation and completion of a run, in order (DESIGN.md's central contract).

`Op` is one line of history.jsonl; `read_jsonl` validates a file line by line and `HistoryWriter`
appends and flushes as operations happen; `pair_calls` matches invocations with completions.
Importers for other tools' formats live in their own modules and all return `History`.
"""

from splitbrain.history.calls import Call, pair_calls
from splitbrain.history.errors import HistoryError
from splitbrain.history.jsonl import HistoryWriter, read_jsonl
from splitbrain.history.ops import NEMESIS, OP_TYPES, History, Op

__all__ = [
    "NEMESIS",
    "OP_TYPES",
    "Call",
    "History",
    "HistoryError",
    "HistoryWriter",
    "Op",
    "pair_calls",
    "read_jsonl",
]

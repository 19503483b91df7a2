"""Op records: one invocation, completion or nemesis event of a history (DESIGN.md, history)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

OpType = Literal["invoke", "ok", "fail", "info"]
OP_TYPES: tuple[str, ...] = ("invoke", "ok", "fail", "info")
NEMESIS = "nemesis"


@dataclass(frozen=True, slots=True)
class Op:
    """One line of a history."""

    index: int  # 0-based position in the history
    time: int  # ns since the run started (driver's monotonic clock)
    process: int | str  # client process id, or "nemesis"
    type: OpType  # invoke, then exactly one of ok / fail / info
    f: str  # the function: read, write, cas, get, put, append, or a nemesis fault
    value: Any = None  # input on invoke, output on ok (read value), what was done for nemesis
    key: str | None = None  # for keyed workloads: keys are independent registers
    node: str | None = None  # which node served the client, when known
    error: Any = None  # on fail / info: why ("cas-mismatch", "timeout", ...)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # unknown fields, kept

    @property
    def is_nemesis(self) -> bool:
        return self.process == NEMESIS

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this op, in the contract's field order."""
        out: dict[str, Any] = {
            "index": self.index,
            "time": self.time,
            "process": self.process,
            "type": self.type,
            "f": self.f,
        }
        if self.key is not None:
            out["key"] = self.key
        out["value"] = self.value
        if self.node is not None:
            out["node"] = self.node
        if self.error is not None:
            out["error"] = self.error
        out.update(self.extra)
        return out


@dataclass(frozen=True, slots=True)
class History:
    """A whole history as read from a file (or imported from another tool's format)."""

    ops: tuple[Op, ...]
    source: str = "<memory>"  # the file it came from
    format: str = "jsonl"  # jsonl, jepsen-edn, porcupine-etcd, porcupine-kv
    warnings: tuple[str, ...] = ()  # e.g. a torn last line left by a killed driver

    def __len__(self) -> int:
        return len(self.ops)

    @property
    def nemesis_ops(self) -> tuple[Op, ...]:
        return tuple(op for op in self.ops if op.is_nemesis)

"""Calls: each client invocation paired with its completion.

The checker, the stats and the report all reason about calls rather than raw lines. An invoke
still open when the history ends is read as an `info` call (DESIGN.md), with no end.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from splitbrain.history.ops import Op


@dataclass(frozen=True, slots=True)
class Call:
    """One client operation from invocation to completion."""

    process: int | str  # the process that performed it
    f: str  # read, write, cas, get, put, append
    key: str | None  # the independent register it touched, if keyed
    value: Any  # the input (invoke value)
    output: Any  # what an ok completion returned (read value); None otherwise
    type: str  # ok, fail or info
    start: int  # invoke time, ns
    end: int | None  # completion time, ns; None when indeterminate without a completion line
    invoke_index: int  # history index of the invoke
    complete_index: int | None  # history index of the completion; None if it never came
    node: str | None = None  # which node served it
    error: Any = None  # the completion's error, if any
    request: str | None = None  # "<client id>:<seq>" the nodes' apply events name, if recorded

    @property
    def succeeded(self) -> bool:
        """The system answered it for real: ok, or a failed compare (a definite observation).

        Availability counts these; a not-leader rejection, a timeout or a lost connection is
        the system being unavailable.
        """
        return self.type == "ok" or (self.type == "fail" and self.error == "cas-mismatch")

    def to_json(self) -> dict[str, Any]:
        return {
            "process": self.process,
            "f": self.f,
            "key": self.key,
            "value": self.value,
            "output": self.output,
            "type": self.type,
            "start": self.start,
            "end": self.end,
            "invoke_index": self.invoke_index,
            "complete_index": self.complete_index,
            "node": self.node,
            "error": self.error,
            **({"request": self.request} if self.request is not None else {}),
        }


def pair_calls(ops: Iterable[Op]) -> list[Call]:
    """Pair client invocations with completions, in invocation order. Nemesis ops are skipped.

    Assumes a history that passed validation (one open invoke per process at most).
    """
    open_ops: dict[int | str, Op] = {}
    done: dict[int, Call] = {}
    order: list[Op] = []
    for op in ops:
        if op.is_nemesis:
            continue
        if op.type == "invoke":
            open_ops[op.process] = op
            order.append(op)
            continue
        inv = open_ops.pop(op.process)
        done[inv.index] = Call(
            process=op.process,
            f=inv.f,
            key=inv.key,
            value=inv.value,
            output=op.value if op.type == "ok" else None,
            type=op.type,
            start=inv.time,
            end=op.time,
            invoke_index=inv.index,
            complete_index=op.index,
            node=op.node or inv.node,
            error=op.error,
            request=_request(op) or _request(inv),
        )
    calls = []
    for inv in order:
        call = done.get(inv.index)
        if call is None:
            call = Call(inv.process, inv.f, inv.key, inv.value, None, "info", inv.time, None,
                        inv.index, None, inv.node, "no completion", _request(inv))
        calls.append(call)
    return calls


def _request(op: Op) -> str | None:
    rid = op.extra.get("request")
    return None if rid is None else str(rid)

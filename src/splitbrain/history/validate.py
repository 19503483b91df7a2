"""The invoke/complete discipline of DESIGN.md, shared by every reader of history files.

Per client process: one open invocation at a time; a completion matches an open invoke with the
same f and key; after an `info` the process never invokes again. Nemesis ops are not paired.
"""

from __future__ import annotations

from collections.abc import Sequence

from splitbrain.history.errors import HistoryError
from splitbrain.history.ops import Op


class PairingCheck:
    """Tracks open invocations per process to validate the invoke/complete discipline."""

    def __init__(self) -> None:
        self.open: dict[int | str, tuple[Op, int]] = {}  # process -> (invoke, line)
        self.crashed: dict[int | str, int] = {}  # process -> line of its info

    def check(self, op: Op, line: int) -> None:
        if op.is_nemesis:
            return
        p = op.process
        if op.type == "invoke":
            if p in self.open:
                raise ValueError(
                    f"process {p} invokes again while its op from line {self.open[p][1]} is open"
                )
            if p in self.crashed:
                raise ValueError(
                    f"process {p} invokes again after its info on line {self.crashed[p]} "
                    "(after info a worker must continue as a new process)"
                )
            self.open[p] = (op, line)
            return
        if p not in self.open:
            raise ValueError(f"{op.type} for process {p} with no open invoke")
        invoke, invoke_line = self.open.pop(p)
        if invoke.f != op.f:
            raise ValueError(
                f"completion f {op.f!r} does not match the invoke's f {invoke.f!r} "
                f"on line {invoke_line}"
            )
        if invoke.key != op.key:
            raise ValueError(
                f"completion key {op.key!r} does not match the invoke's key {invoke.key!r} "
                f"on line {invoke_line}"
            )
        if op.type == "info":
            self.crashed[p] = line



def validate(ops: Sequence[Op], name: str, lines: Sequence[int]) -> None:
    """Check the discipline over ops read from `name` (op i from line lines[i])."""
    pairing = PairingCheck()
    for op, line in zip(ops, lines, strict=True):
        try:
            pairing.check(op, line)
        except ValueError as exc:
            raise HistoryError(name, line, str(exc)) from None

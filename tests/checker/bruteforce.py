"""A brute-force linearizability checker: the definition, written as plainly as possible.

Used only by tests, as the reference the real search must agree with. No reductions: every
call that may have taken effect is considered in every order the real-time constraints allow.
A completed call (ok, or a fail that observes the state) must be in the order; an info call may
be, anywhere after its invoke; a fail that does not observe the state is left out. Memoising
(linearized set, state) changes nothing: the answer is a function of that pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from splitbrain.checker.models import ILLEGAL, Input, Model, freeze
from splitbrain.history import Call


def brute_force(calls: Sequence[Call], model: Model, initial: Any, *,
                fail_means_no_effect: bool = False) -> bool:
    ops: list[tuple[Call, Input, bool]] = []  # call, input, must be linearized
    for c in calls:
        if c.type == "ok":
            ops.append((c, Input(c.f, freeze(c.value), freeze(c.output), "ok"), True))
        elif c.type == "fail":
            if fail_means_no_effect:
                continue
            if c.f in model.observing_fails and c.error in (None, "cas-mismatch"):
                ops.append((c, Input(c.f, freeze(c.value), None, "fail"), True))
        else:
            ops.append((c, Input(c.f, freeze(c.value), None, "info"), False))
    n = len(ops)
    must = [m for _, _, m in ops]

    def may_go_next(placed: int, i: int) -> bool:
        """No required call that completed before i was invoked is still unplaced."""
        start = ops[i][0].invoke_index
        return all(placed >> j & 1 or not must[j] or ops[j][0].complete_index > start
                   for j in range(n) if j != i)

    @cache
    def search(placed: int, state: Any) -> bool:
        if all(placed >> j & 1 for j in range(n) if must[j]):
            return True
        for i in range(n):
            if placed >> i & 1 or not may_go_next(placed, i):
                continue
            after = model.step(state, ops[i][1])
            if after is not ILLEGAL and search(placed | 1 << i, after):
                return True
        return False

    return search(0, model.init(freeze(initial)))

"""Shrinking an invalid history: the fewest calls of the failing key that are still invalid.

Delta debugging (Zeller's ddmin) over the failing key's calls, with the public `check()` as the
test. Each candidate subset is first *closed*: every write a kept call may have observed —
invoked before that call completed, and writing what it read (a register's read or cas), or
anything at all (a failed compare, a kv get) — is kept too. That makes the answer evidence:
any linearization of the whole history, restricted to a closed subset, is a linearization of
the subset, so a closed subset that is not linearizable proves the whole is not. Without it,
a lone read of a value written elsewhere would be "invalid" and say nothing.

The result is 1-minimal — no call of it can go (with what only it needed) and leave it
failing — unless the time budget ran out first, which it says.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from splitbrain.checker.linearizable import check, resolve_model
from splitbrain.checker.models import Model, freeze
from splitbrain.history import Call

DEFAULT_BUDGET = 60.0  # seconds of shrinking before settling for what was found
_DEFAULT: Any = object()


@dataclass(frozen=True)
class Shrunk:
    key: str | None
    calls: tuple[Call, ...]  # the minimal failing set, in invocation order
    before: int  # calls of the failing key
    after: int
    checks: int  # check() calls made
    seconds: float
    minimal: bool  # False: the time budget ran out before 1-minimality was reached
    result: dict[str, Any]  # check() of the minimal set (its failure explains it)

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "before": self.before, "after": self.after,
                "checks": self.checks, "seconds": round(self.seconds, 3),
                "minimal": self.minimal, "calls": [c.to_json() for c in self.calls],
                "failure": self.result.get("failure"), "cause": self.result.get("cause")}


def _writes(model: Model, c: Call) -> bool:
    """May the call have changed the state? (A fail definitely did not.)"""
    return c.type != "fail" and c.f not in model.reads


def _written(c: Call) -> Any:
    """The value a register write or cas puts in place."""
    if c.f == "cas":
        return freeze(c.value[1]) if isinstance(c.value, list | tuple) and len(c.value) == 2 \
            else None
    return freeze(c.value)


def _needs(model: Model, c: Call, fail_means_no_effect: bool) -> Callable[[Call], bool] | None:
    """Which writes must stay when `c` stays: those whose value `c` may have observed.

    None: `c` observes nothing. A register read or cas observed one value (only writes of it
    matter); a failed compare or a kv get observed the whole state (every write matters)."""
    if c.f in model.reads:
        if c.type != "ok":
            return None
        if model.name == "kv":
            return lambda w: True
        seen = freeze(c.output)
        return lambda w: _written(w) == seen
    if c.f == "cas" and isinstance(c.value, list | tuple) and len(c.value) == 2:
        if c.type == "fail":
            return None if fail_means_no_effect else (lambda w: True)
        expected = freeze(c.value[0])
        return lambda w: _written(w) == expected  # ok, or info that may have taken effect
    return None


def closure(model: Model, chosen: Sequence[Call], pool: Sequence[Call],
            fail_means_no_effect: bool = False) -> list[Call]:
    """`chosen` plus, from `pool`, every write a chosen call may have observed (transitively).

    A write w may have been observed by c if it could come before c in a linearization
    (invoked before c completed, in history order as the checker reads it) and wrote what c
    saw. With all of those kept, any
    linearization of the whole restricts to one of the subset: if the subset is not
    linearizable, neither is the whole."""
    kept = {id(c): c for c in chosen}
    todo = list(chosen)
    while todo:
        c = todo.pop()
        needs = _needs(model, c, fail_means_no_effect)
        if needs is None:
            continue
        for w in pool:
            if id(w) not in kept and _writes(model, w) and w is not c \
                    and (c.complete_index is None or w.invoke_index < c.complete_index) \
                    and needs(w):
                kept[id(w)] = w
                todo.append(w)
    return sorted(kept.values(), key=lambda c: c.invoke_index)


def ddmin(items: list[Call], failing: Callable[[list[Call]], bool],
          deadline: float) -> tuple[list[Call], bool]:
    """Zeller's ddmin: a 1-minimal failing subset of `items` (which fail), and whether it
    got there before `deadline` (time.monotonic)."""
    n = 2
    while len(items) >= 2:
        if time.monotonic() > deadline:
            return items, False
        size = len(items)
        chunks = [items[i * size // n:(i + 1) * size // n] for i in range(n)]
        for chunk in chunks:
            if failing(chunk):
                items, n = chunk, 2
                break
        else:
            for i in range(n):
                rest = [c for j, chunk in enumerate(chunks) if j != i for c in chunk]
                if failing(rest):
                    items, n = rest, max(n - 1, 2)
                    break
            else:
                if n >= size:
                    return items, True
                n = min(2 * n, size)
    return items, True


def shrink(calls: Sequence[Call], model: Model | str | None, *, key: Any = None,
           initial: Any = _DEFAULT, fail_means_no_effect: bool = False,
           budget: float = DEFAULT_BUDGET) -> Shrunk:
    """The minimal failing set of `key`'s calls (`calls` may hold every key).

    `initial` is the value a key starts with (default: the model's). Raises ValueError if the
    key's calls are not invalid to begin with.
    """
    started = time.monotonic()
    deadline = started + budget
    chosen = resolve_model(calls, model)
    if initial is _DEFAULT:
        initial = chosen.initial
    mine = [c for c in calls if c.key == key]
    checks = 0
    last: dict[str, Any] = {}

    def failing(subset: list[Call]) -> bool:
        nonlocal checks, last
        checks += 1
        remaining = max(0.1, deadline - time.monotonic())
        whole = closure(chosen, subset, mine, fail_means_no_effect)
        result = check(whole, chosen, initial=initial,
                       fail_means_no_effect=fail_means_no_effect, time_limit=remaining)
        if result["valid"] is False:
            last = result
            return True
        return False

    if not failing(mine):
        raise ValueError(f"the calls of key {key} are not invalid: nothing to shrink")
    items = mine
    # Calls invoked after the failing op completed rarely matter: try without them at once.
    op = last.get("failure", {}).get("op")
    if op and op.get("complete_index") is not None:
        early = [c for c in mine if c.invoke_index < op["complete_index"]]
        if len(early) < len(mine) and failing(early):
            items = early
    items, minimal = ddmin(items, failing, deadline)
    items = closure(chosen, items, mine, fail_means_no_effect)
    # ddmin was 1-minimal over the calls it chose; their closure may still lose one
    changed = minimal
    while changed and time.monotonic() < deadline:
        changed = False
        for c in items:
            rest = closure(chosen, [k for k in items if k is not c], mine, fail_means_no_effect)
            if len(rest) < len(items) and failing(rest):
                items, changed = rest, True
                break
    minimal = minimal and time.monotonic() < deadline
    final = check(items, chosen, initial=initial, fail_means_no_effect=fail_means_no_effect)
    return Shrunk(key, tuple(items), len(mine), len(items), checks + 1,
                  time.monotonic() - started, minimal, final)

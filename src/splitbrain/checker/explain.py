"""Explanations of an illegal key: what a person needs to see why no linearization exists.

The search reports the longest prefix it could linearize. Replaying it through the plain model
(no reductions) gives the real state after each step; the call that could not follow it is the
pending completed call that had to happen first (the earliest completion), and the model says
in one line why it cannot happen in that state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from splitbrain.checker.models import ILLEGAL, NOWHERE, Model, freeze
from splitbrain.checker.search import REDUCTIONS, Outcome, kept_calls, to_input
from splitbrain.history import Call

MAX_CONCURRENT = 20  # calls shown around the failure


def explain(key: Any, calls: Sequence[Call], model: Model, initial: Any, outcome: Outcome, *,
            fail_means_no_effect: bool = False, reductions: frozenset[str] = REDUCTIONS
            ) -> dict[str, Any]:
    """The `failure` object of results.json for an illegal key (docs/architecture.md).

    `outcome.linearized` holds positions among the calls the search placed (kept_calls);
    inputs are made only for the calls shown, and the model's reduction only when the failing
    call's reason needs it (it usually does not), since many files fail and fail fast.
    """
    kept = kept_calls(calls, model, fail_means_no_effect, reductions)
    described: dict[Any, str] = {}

    def describe(state: Any) -> str:
        try:
            text = described.get(state)
        except TypeError:  # an unhashable state
            return model.describe_state(state)
        if text is None:
            text = described[state] = model.describe_state(state)
        return text

    order = list(outcome.linearized)
    while order and kept[order[-1]][1] == "info":
        order.pop()  # info calls at the end of a prefix explain nothing
    state = model.init(freeze(initial))
    prefix = []
    for i in order:
        call, seen = kept[i]
        after = model.step(state, to_input(call, seen))
        if after is ILLEGAL:  # cannot happen for a prefix the search found; stop honestly
            break
        state = after
        prefix.append({"op": call.to_json(), "state": describe(state)})
    placed = set(order)
    pending = [i for i, (_, seen) in enumerate(kept) if i not in placed and seen != "info"]
    if not pending:  # every completed call fits: the search ran out elsewhere; nothing to blame
        return {"key": key, "op": None, "reason": "no linearization found", "prefix": prefix,
                "model": model.name, "state": describe(state), "concurrent": []}
    blocked = min(pending, key=lambda i: kept[i][0].complete_index or 0)
    call, seen = kept[blocked]
    inp = to_input(call, seen)
    if model.step(state, inp) is ILLEGAL:
        reason = model.reason(state, inp)
    else:
        where = _placement(kept, model, initial, reductions, blocked)
        if where is NOWHERE:
            reason = (f"{call.f} {_short(call.value)} was seen by reads after two different "
                      "prefixes: it cannot have happened once")
        elif where is not None:
            reason = (f"{call.f} {_short(call.value)} was observed applied to "
                      f"{model.describe_state(where)}, but the state here is {describe(state)}")
        else:
            reason = (f"{call.f} {_short(call.value)} fits state {describe(state)}, but "
                      "no order of the calls concurrent with it lets the rest follow")
    end = call.complete_index if call.complete_index is not None else 1 << 62
    concurrent = [c.to_json() for i, (c, _) in enumerate(kept)
                  if i not in placed and i != blocked and c.invoke_index < end]
    return {
        "key": key,
        "op": call.to_json(),
        "reason": reason,
        "prefix": prefix,
        "model": model.name,
        "state": describe(state),
        "concurrent": concurrent[:MAX_CONCURRENT],
    }


def _placement(kept: list[tuple[Call, str]], model: Model, initial: Any,
               reductions: frozenset[str], i: int) -> Any:
    """The only state call i may take effect in by the model's reduction, or None."""
    if "model" not in reductions or model.reduce is None:
        return None
    inputs = [to_input(call, seen) for call, seen in kept]
    return model.reduce(inputs, model.init(freeze(initial))).placement.get(i)


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text if len(text) <= 60 else text[:57] + "..."

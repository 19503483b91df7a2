"""Explanations of an illegal key: what a person needs to see why no linearization exists.

The search reports the longest prefix it could linearize. Replaying it through the plain model
(no reductions) gives the real state after each step; the call that could not follow it is the
pending completed call that had to happen first (the earliest completion), and the model says
in one line why it cannot happen in that state.

Selecting those (the prefix and its states, the call to blame, the calls concurrent with it)
is done here for the Python engine and by the compiled search itself for the built-in models
(Search.failure in _core.c, the same rules: the tests compare both engines' failures); the
rest is shared. Many histories fail, and fail fast: the work is what the verdict line and the
report show, each state described once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from splitbrain.checker.models import ILLEGAL, NOWHERE, Model, freeze
from splitbrain.checker.search import (
    REDUCTIONS,
    Outcome,
    call_json,
    kept_calls,
    kept_outcome,
    to_input,
)
from splitbrain.history import Call

MAX_CONCURRENT = 20  # calls shown around the failure


def explain(key: Any, calls: Sequence[Call], model: Model, initial: Any, outcome: Outcome, *,
            fail_means_no_effect: bool = False, reductions: frozenset[str] = REDUCTIONS
            ) -> dict[str, Any]:
    """The `failure` object of results.json for an illegal key (docs/architecture.md).

    `outcome.linearized` holds positions among the calls the search placed (kept_calls); the
    model's reduction runs only when the failing call's reason needs it (it usually does not).
    """
    if outcome.failure is not None:
        prefix_calls, states, blocked, concurrent = outcome.failure
    else:
        prefix_calls, states, blocked, concurrent = _select(calls, model, initial, outcome,
                                                            fail_means_no_effect, reductions)
    describe = _describer(model)
    state = states[-1] if states else model.init(freeze(initial))
    prefix = [{"op": call_json(c), "state": text}
              for c, text in zip(prefix_calls, map(describe, states), strict=True)]
    if blocked is None:  # every completed call fits: the search ran out elsewhere; nothing to blame
        return {"key": key, "op": None, "reason": "no linearization found", "prefix": prefix,
                "model": model.name, "state": describe(state), "concurrent": []}
    inp = to_input(blocked, kept_outcome(blocked, model, fail_means_no_effect) or "info")
    if model.step(state, inp) is ILLEGAL:
        reason = model.reason(state, inp)
    else:
        where = _placement(calls, model, initial, fail_means_no_effect, reductions, blocked)
        if where is NOWHERE:
            reason = (f"{blocked.f} {_short(blocked.value)} was seen by reads after two "
                      "different prefixes: it cannot have happened once")
        elif where is not None:
            reason = (f"{blocked.f} {_short(blocked.value)} was observed applied to "
                      f"{model.describe_state(where)}, but the state here is {describe(state)}")
        else:
            reason = (f"{blocked.f} {_short(blocked.value)} fits state {describe(state)}, but "
                      "no order of the calls concurrent with it lets the rest follow")
    return {
        "key": key,
        "op": call_json(blocked),
        "reason": reason,
        "prefix": prefix,
        "model": model.name,
        "state": describe(state),
        "concurrent": [call_json(c) for c in concurrent],
    }


def _select(calls: Sequence[Call], model: Model, initial: Any, outcome: Outcome,
            fail_means_no_effect: bool, reductions: frozenset[str]
            ) -> tuple[list[Call], list[Any], Call | None, list[Call]]:
    """The prefix's calls and the plain model's state after each (the replay stops before a
    call that cannot follow: it cannot happen for a prefix the search found, but if it did the
    prefix would end there), the call to blame (the pending completed call that completes
    first; None if none is pending) and the calls concurrent with it (not placed, invoked
    before it completed)."""
    kept = kept_calls(calls, model, fail_means_no_effect, reductions)
    order = list(outcome.linearized)
    while order and kept[order[-1]][1] == "info":
        order.pop()  # info calls at the end of a prefix explain nothing
    state = model.init(freeze(initial))
    states = []
    for i in order:
        call, seen = kept[i]
        state = model.step(state, to_input(call, seen))
        if state is ILLEGAL:
            break
        states.append(state)
    placed = set(order)
    pending = [i for i, (_, seen) in enumerate(kept) if i not in placed and seen != "info"]
    prefix = [kept[i][0] for i in order[:len(states)]]
    if not pending:
        return prefix, states, None, []
    blocked = min(pending, key=lambda i: kept[i][0].complete_index or 0)
    end = kept[blocked][0].complete_index
    end = 1 << 62 if end is None else end
    concurrent = [c for i, (c, _) in enumerate(kept)
                  if i not in placed and i != blocked and c.invoke_index < end]
    return prefix, states, kept[blocked][0], concurrent[:MAX_CONCURRENT]


def _describer(model: Model):
    """model.describe_state, once per state (states repeat along a prefix)."""
    described: dict[Any, str] = {}
    show = model.describe_state

    def describe(state: Any) -> str:
        try:
            return described[state]
        except KeyError:
            text = described[state] = show(state)
            return text
        except TypeError:  # an unhashable state
            return show(state)

    return describe


def _placement(calls: Sequence[Call], model: Model, initial: Any, fail_means_no_effect: bool,
               reductions: frozenset[str], blocked: Call) -> Any:
    """The only state the blocked call may take effect in by the model's reduction, or None."""
    if "model" not in reductions or model.reduce is None:
        return None
    kept = kept_calls(calls, model, fail_means_no_effect, reductions)
    inputs = [to_input(call, seen) for call, seen in kept]
    i = next(i for i, (call, _) in enumerate(kept) if call is blocked)
    return model.reduce(inputs, model.init(freeze(initial))).placement.get(i)


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text if len(text) <= 60 else text[:57] + "..."

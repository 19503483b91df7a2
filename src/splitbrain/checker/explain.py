"""Explanations of an illegal key: what a person needs to see why no linearization exists.

The search reports the longest prefix it could linearize. Replaying it through the plain model
(no reductions) gives the real state after each step; the call that could not follow it is the
pending completed call that had to happen first (the earliest completion), and the model says
in one line why it cannot happen in that state.
"""

from __future__ import annotations

from typing import Any

from splitbrain.checker.models import ILLEGAL, NOWHERE
from splitbrain.checker.search import Outcome, Problem

MAX_CONCURRENT = 20  # calls shown around the failure


def explain(p: Problem, outcome: Outcome) -> dict[str, Any]:
    """The `failure` object of results.json for an illegal key (docs/architecture.md)."""
    model = p.model
    order = list(outcome.linearized)
    while order and p.optional[order[-1]]:
        order.pop()  # info calls at the end of a prefix explain nothing
    state = p.initial
    prefix = []
    for i in order:
        after = model.step(state, p.inputs[i])
        if after is ILLEGAL:  # cannot happen for a prefix the search found; stop honestly
            break
        state = after
        prefix.append({"op": p.calls[i].to_json(), "state": model.describe_state(state)})
    placed = set(order)
    pending = [i for i in range(len(p.calls)) if i not in placed and not p.optional[i]]
    if not pending:  # every completed call fits: the search ran out elsewhere; nothing to blame
        return {"key": p.key, "op": None, "reason": "no linearization found", "prefix": prefix,
                "model": model.name, "state": model.describe_state(state), "concurrent": []}
    blocked = min(pending, key=lambda i: p.calls[i].complete_index or 0)
    call = p.calls[blocked]
    if model.step(state, p.inputs[blocked]) is ILLEGAL:
        reason = model.reason(state, p.inputs[blocked])
    elif p.placement[blocked] is NOWHERE:
        reason = (f"{call.f} {_short(call.value)} was seen by reads after two different "
                  "prefixes: it cannot have happened once")
    elif p.placement[blocked] is not None:
        reason = (f"{call.f} {_short(call.value)} was observed applied to "
                  f"{model.describe_state(p.placement[blocked])}, but the state here is "
                  f"{model.describe_state(state)}")
    else:
        reason = (f"{call.f} {_short(call.value)} fits state {model.describe_state(state)}, but "
                  "no order of the calls concurrent with it lets the rest follow")
    end = call.complete_index if call.complete_index is not None else 1 << 62
    concurrent = [p.calls[i].to_json() for i in range(len(p.calls))
                  if i not in placed and i != blocked and p.calls[i].invoke_index < end]
    return {
        "key": p.key,
        "op": call.to_json(),
        "reason": reason,
        "prefix": prefix,
        "model": model.name,
        "state": model.describe_state(state),
        "concurrent": concurrent[:MAX_CONCURRENT],
    }


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text if len(text) <= 60 else text[:57] + "..."

"""The linearizability search for one key: Wing–Gong with Lowe's just-in-time restriction.

The calls of one key become a doubly linked list of invoke and return events in history order.
The search walks it from the head: at an invoke it tries to linearize that call next (step the
model; skip if the (linearized set, state) pair was seen before); at a return it has met a
call that had to be linearized by now and was not, so it backtracks. Calls whose invoke comes
after the first pending return are never tried early: that is the just-in-time restriction.

Rules kept (each checked against a brute-force search by tests/checker/test_reductions.py):
- the goal is every *completed* call linearized; an `info` call may take effect any time after
  its invoke (it has no return event) or never;
- `info` reads constrain nothing and are dropped before the search ("info-reads");
- an `info` call that would leave the state unchanged is never linearized ("info-no-ops");
- an `info` call is never followed directly by a blind call (one whose next state ignores the
  current state, like a write): removing it would leave a shorter valid order ("info-blind");
- `info` calls with identical inputs are interchangeable, so only the earliest-invoked one not
  yet linearized is a candidate ("info-classes");
- the model's own reduction: equivalent states merged, calls pinned to one state ("model");
- a completed call that never changes the state (a read, a failed cas) and is legal now is
  linearized now without trying alternatives: every call that had to precede it is already
  placed, and taking it out of a later place changes no state after it ("greedy-stutter");
- completed calls with identical inputs: among those already invoked, only the one that
  returns first is a candidate; swapping two of them in a valid order keeps it valid
  ("ok-classes").
Fails are dropped unless they observe the state (a cas-mismatch under the default semantics).

The hot loop touches only ints and lists so it can move to compiled code unchanged: states and
inputs are interned, transitions memoised per (input class, state).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from splitbrain.checker.models import ILLEGAL, NOWHERE, Input, Model, freeze
from splitbrain.history import Call

REDUCTIONS = frozenset({"info-reads", "info-no-ops", "info-blind", "info-classes", "model",
                        "greedy-stutter", "ok-classes"})

_NOWHERE_ID = -2  # a placement that no state id equals


@dataclass(slots=True)
class Problem:
    """One key's calls, compiled for the search."""

    key: str | None
    model: Model
    calls: list[Call]  # the calls the search places, in invoke order
    inputs: list[Input]  # what the model sees of each
    initial: Any  # the initial state
    optional: list[bool]  # info calls: may be left out
    placement: list[Any]  # the only state a call may take effect in, or None
    canonical: Any  # state -> representative, or None
    reductions: frozenset[str]
    dropped: int = 0  # calls left out before the search (failed, info reads)
    events: list[int] = field(default_factory=list)  # op for an invoke, ~op for a return


def kept_outcome(call: Call, model: Model, fail_means_no_effect: bool) -> str | None:
    """What the search sees of a call: ok, fail (an observation), info; None = leave it out."""
    if call.type == "ok":
        return "ok"
    if call.type == "fail":
        observing = call.f in model.observing_fails and call.error in (None, "cas-mismatch")
        return "fail" if observing and not fail_means_no_effect else None
    return "info"


def to_input(call: Call, outcome: str) -> Input:
    return Input(call.f, freeze(call.value), freeze(call.output) if outcome == "ok" else None,
                 outcome)


def compile_problem(
    key: str | None,
    calls: Sequence[Call],
    model: Model,
    initial: Any,
    *,
    fail_means_no_effect: bool = False,
    reductions: frozenset[str] = REDUCTIONS,
) -> Problem:
    kept: list[Call] = []
    inputs: list[Input] = []
    for call in calls:
        outcome = kept_outcome(call, model, fail_means_no_effect)
        if outcome is None or (outcome == "info" and call.f in model.reads
                               and "info-reads" in reductions):
            continue
        kept.append(call)
        inputs.append(to_input(call, outcome))
    state0 = model.init(freeze(initial))
    canonical = None
    placement: list[Any] = [None] * len(kept)
    if "model" in reductions and model.reduce is not None:
        reduction = model.reduce(inputs, state0)
        canonical = reduction.canonical
        for i, state in reduction.placement.items():
            placement[i] = state
    # Events in history order: an invoke at its line, a return at its completion line.
    order = [(c.invoke_index, i) for i, c in enumerate(kept)]
    order += [(c.complete_index, ~i) for i, (c, inp) in enumerate(zip(kept, inputs, strict=True))
              if inp.outcome != "info"]
    order.sort()
    return Problem(key, model, kept, inputs, state0, [inp.outcome == "info" for inp in inputs],
                   placement, canonical, reductions, len(calls) - len(kept),
                   [e for _, e in order])


@dataclass(slots=True)
class Outcome:
    """How the search of one key ended."""

    valid: bool
    linearized: list[int]  # valid: a linearization; invalid: the longest linearizable prefix
    states: list[Any]  # the interned states (ids index into it)
    cache_size: int  # nodes remembered as failing


def search(p: Problem) -> Generator[int, int, Outcome]:
    """The search as a generator: `send(n)` runs about n steps, yields the cache size.

    The caller drives it step budget by step budget so several keys can share the time; the
    result arrives as the StopIteration value.
    """
    model_step = p.model.step
    canonical = p.canonical
    inputs = p.inputs
    n = len(inputs)

    # Interned states and input classes.
    states: list[Any] = []
    state_ids: dict[Any, int] = {}

    def intern(state: Any) -> int:
        sid = state_ids.get(state)
        if sid is None:
            sid = state_ids[state] = len(states)
            states.append(state)
        return sid

    start = intern(canonical(p.initial) if canonical else p.initial)
    class_of: dict[Input, int] = {}
    tclass = [class_of.setdefault(inp, len(class_of)) for inp in inputs]
    transitions: list[dict[int, int]] = [{} for _ in class_of]
    class_input = {c: inp for inp, c in class_of.items()}

    def transition(c: int, sid: int) -> int:
        after = model_step(states[sid], class_input[c])
        result = -1 if after is ILLEGAL else intern(canonical(after) if canonical else after)
        transitions[c][sid] = result
        return result

    required = [-1 if s is None else _NOWHERE_ID if s is NOWHERE else intern(s)
                for s in p.placement]
    # info calls: interchangeable classes (same input), earliest-invoked first.
    optional = p.optional
    skip_no_ops = "info-no-ops" in p.reductions
    members: list[list[int]] = []
    iclass = [-1] * n
    if "info-classes" in p.reductions:
        by_input: dict[Input, int] = {}
        for i in range(n):
            if optional[i]:
                iclass[i] = by_input.setdefault(inputs[i], len(members))
                if iclass[i] == len(members):
                    members.append([])
                members[iclass[i]].append(i)
    else:
        for i in range(n):
            if optional[i]:
                iclass[i] = len(members)
                members.append([i])
    for m in members:
        m.append(-1)  # sentinel: the class is used up
    cursor = [0] * len(members)

    # Linked list over events: node 0 is the head, nodes 1..m the events, m+1 the end.
    events = p.events
    m = len(events)
    ev = [0, *events, -(1 << 40)]
    nxt = list(range(1, m + 3))
    prv = list(range(-1, m + 1))
    call_node = [0] * n
    ret_node = [-1] * n
    for node in range(1, m + 1):
        e = ev[node]
        if e >= 0:
            call_node[e] = node
        else:
            ret_node[~e] = node
    # Completed calls are numbered in invoke order and their linearized set kept as (low,
    # mask): every call below `low` is linearized, bit j of `mask` is call low + j. Calls are
    # linearized roughly in order, so the key stays as small as the window of concurrent calls
    # instead of growing with the history. Info calls get their own small bitset.
    number = [0] * n
    completed = info = 0
    for i in range(n):
        if optional[i]:
            number[i] = 1 << info
            info += 1
        else:
            number[i] = completed
            completed += 1
    blind = [inp.f in p.model.blind and "info-blind" in p.reductions for inp in inputs]

    remaining = sum(1 for o in optional if not o)
    greedy = "greedy-stutter" in p.reductions
    # Completed calls with identical inputs: of those invoked by now, the one that returns
    # first goes first (swapping two such calls in a valid order keeps it valid).
    invoke_at = [c.invoke_index for c in p.calls]
    return_at = [c.complete_index if c.complete_index is not None else 1 << 62 for c in p.calls]
    earlier: list[tuple[int, ...]] = [()] * n
    if "ok-classes" in p.reductions:
        same: dict[Input, list[int]] = {}
        for i in range(n):
            if not optional[i]:
                same.setdefault(inputs[i], []).append(i)
        for group in same.values():
            group.sort(key=return_at.__getitem__)
            for k, i in enumerate(group):
                # one that returned before i was invoked is always placed when i is a candidate
                earlier[i] = tuple(a for a in group[:k] if return_at[a] > invoke_at[i])
    placed = [False] * n
    scan = greedy or "ok-classes" in p.reductions
    stutter = [not optional[i] and (inputs[i].f in p.model.reads or inputs[i].outcome == "fail")
               for i in range(n)]
    # Nodes already visited: (low, mask, state, info set, last was info). Every one not on the
    # stack has been explored and failed.
    seen: set[tuple[int, int, int, int, bool]] = set()
    # (invoke node, state, low, mask, extra, after, frontier) before the step; was it forced
    stack: list[tuple[int, int, int, int, int, bool, int, bool]] = []
    best: list[int] = []  # the order that linearized the most completed calls
    best_remaining = remaining + 1
    state = start
    low = mask = 0  # completed calls linearized (see above)
    extra = 0  # info calls linearized, as a bitset
    after = False  # the last call linearized was an info call
    fresh = scan  # at a node not yet scanned for a forced step and its frontier
    frontier = 1 << 62  # history index of the first pending return: the window's end
    entry = nxt[0]
    budget = yield 0
    while True:
        if remaining == 0:
            order = [ev[e[0]] for e in stack]
            return Outcome(True, order, states, len(seen))
        budget -= 1
        if budget <= 0:
            budget = yield len(seen)
        forced = False
        if fresh:
            # A completed call that never changes the state (a read, a failed cas) and is legal
            # here goes first: in any valid order it can move here, since everything that had
            # to precede it is placed and removing it from later changes no later state.
            fresh = False
            node_ = nxt[0]
            op = ev[node_]
            while op >= 0:
                if greedy and stutter[op] and (required[op] < 0 or required[op] == state):
                    new = transitions[tclass[op]].get(state)
                    if new is None:
                        new = transition(tclass[op], state)
                    if new >= 0:
                        break
                node_ = nxt[node_]
                op = ev[node_]
            if op >= 0:
                forced = True
                entry = node_
            else:
                frontier = return_at[~op] if node_ <= m else 1 << 62
        op = ev[entry]
        place = False
        if forced:
            c = -1
            low2, mask2, extra2 = low, mask | 1 << (number[op] - low), extra
            if mask2 & 1:
                shift = (mask2 ^ (mask2 + 1)).bit_length() - 1
                low2, mask2 = low + shift, mask2 >> shift
            node = (low2, mask2, state, extra2, False)
            place = node not in seen  # seen: it failed, and so does this node
        elif op >= 0:  # an invoke: try to linearize this call now
            c = iclass[op]
            if earlier[op]:
                for a in earlier[op]:
                    if not placed[a] and invoke_at[a] < frontier:
                        break  # an identical call that returns sooner goes first
                else:
                    a = -1
                if a >= 0:
                    entry = nxt[entry]
                    continue
            if (c < 0 or members[c][cursor[c]] == op) and (
                    required[op] < 0 or required[op] == state) and not (after and blind[op]):
                trans = transitions[tclass[op]]
                new = trans.get(state)
                if new is None:
                    new = transition(tclass[op], state)
                if new >= 0 and not (c >= 0 and new == state and skip_no_ops):
                    if c < 0:
                        low2, mask2, extra2 = low, mask | 1 << (number[op] - low), extra
                        if mask2 & 1:
                            shift = (mask2 ^ (mask2 + 1)).bit_length() - 1
                            low2, mask2 = low + shift, mask2 >> shift
                    else:
                        low2, mask2, extra2 = low, mask, extra | number[op]
                    node = (low2, mask2, new, extra2, c >= 0)
                    place = node not in seen
            if not place:
                entry = nxt[entry]
                continue
        if place:
            seen.add(node)
            stack.append((entry, state, low, mask, extra, after, frontier, forced))
            placed[op] = True
            # lift the call's invoke and return out of the list
            a, b = prv[entry], nxt[entry]
            nxt[a] = b
            prv[b] = a
            r = ret_node[op]
            if r >= 0:
                a, b = prv[r], nxt[r]
                nxt[a] = b
                prv[b] = a
                remaining -= 1
            else:
                cursor[c] += 1
            if remaining < best_remaining:
                best_remaining = remaining
                best = [ev[e[0]] for e in stack]
            state, low, mask, extra, after = node[2], low2, mask2, extra2, c >= 0
            fresh = scan
            entry = nxt[0]
            continue
        # This node fails (a return came before its call, or its forced step failed): back
        # up; a node whose forced step failed fails as a whole, so keep backing up past it.
        while True:
            if not stack:
                return Outcome(False, best, states, len(seen))
            entry, state, low, mask, extra, after, frontier, forced = stack.pop()
            op = ev[entry]
            placed[op] = False
            r = ret_node[op]
            if r >= 0:
                nxt[prv[r]] = r
                prv[nxt[r]] = r
                remaining += 1
            else:
                cursor[iclass[op]] -= 1
            nxt[prv[entry]] = entry
            prv[nxt[entry]] = entry
            if not forced:
                break
        entry = nxt[entry]

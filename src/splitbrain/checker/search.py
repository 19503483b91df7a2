"""The linearizability search for one key: Wing–Gong with Lowe's just-in-time restriction.

The calls of one key become a doubly linked list of invoke and return events in history order;
a linearized call is lifted out of it. At each node of the search the window is the invokes
before the first pending return (the just-in-time restriction: nothing invoked after a
pending call returned may go before it). Each call of the window is tried next, the ones that
return soonest first (a large saving over list order on busy keys): step the model, skip the
node if it was seen before (a node is the linearized set and the state), else go deeper. When
every candidate fails the node fails and the search backs up.

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

import sys
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
                   placement, canonical, reductions, [e for _, e in order])


@dataclass(slots=True)
class Outcome:
    """How the search of one key ended."""

    valid: bool
    linearized: list[int]  # valid: a linearization; invalid: the longest linearizable prefix


_FAR = 1 << 62  # a history index past every real one


def node_bytes(calls: int) -> int:
    """Rough size of one remembered search node: a 5-tuple of small ints and a set slot; the
    bitsets grow with the window of concurrent calls, bounded here by the history."""
    return 250 + min(calls, 4096) // 8


class _Tables:
    """Everything the hot loop reads, as lists of ints indexed by call, class or list node."""

    def __init__(self, p: Problem) -> None:
        n = len(p.inputs)
        inputs, optional, reductions = p.inputs, p.optional, p.reductions
        self.optional = optional
        # States and inputs interned as ints; transitions memoised per (input class, state).
        self.states: list[Any] = []
        self.state_ids: dict[Any, int] = {}
        self.state_bytes = 0  # what interned states hold (kv states are strings)
        self.canonical = p.canonical
        self.step = p.model.step
        self.start = self.intern(p.canonical(p.initial) if p.canonical else p.initial)
        class_of: dict[Input, int] = {}
        self.tclass = [class_of.setdefault(inp, len(class_of)) for inp in inputs]
        self.class_input = list(class_of)
        self.transitions: list[dict[int, int]] = [{} for _ in class_of]
        self.required = [-1 if s is None else _NOWHERE_ID if s is NOWHERE else self.intern(s)
                         for s in p.placement]
        # Info calls: classes of identical inputs, used earliest-invoked first; -1 ends a class.
        self.iclass = [-1] * n
        self.members: list[list[int]] = []
        by_input: dict[Input, int] = {}
        for i in range(n):
            if optional[i]:
                key = inputs[i] if "info-classes" in reductions else i
                c = self.iclass[i] = by_input.setdefault(key, len(self.members))  # type: ignore[arg-type]
                if c == len(self.members):
                    self.members.append([])
                self.members[c].append(i)
        for group in self.members:
            group.append(-1)
        # Completed calls are numbered in invoke order and their linearized set kept as (low,
        # mask): every call below `low` is linearized, bit j of `mask` is call low + j. Calls
        # are linearized roughly in order, so the key stays as small as the window of
        # concurrent calls instead of growing with the history. Info calls: their own bitset.
        self.number = [0] * n
        completed = info = 0
        for i in range(n):
            if optional[i]:
                self.number[i] = 1 << info
                info += 1
            else:
                self.number[i] = completed
                completed += 1
        self.completed = completed
        self.blind = [inp.f in p.model.blind and "info-blind" in reductions for inp in inputs]
        self.stutter = [not optional[i] and (inputs[i].f in p.model.reads
                                             or inputs[i].outcome == "fail") for i in range(n)]
        # Completed calls with identical inputs: for each, the ones that return sooner and
        # overlap it (one that returned before it was invoked is placed when it is a candidate).
        self.invoke_at = [c.invoke_index for c in p.calls]
        self.return_at = [_FAR if c.complete_index is None else c.complete_index
                          for c in p.calls]
        self.earlier: list[tuple[int, ...]] = [()] * n
        if "ok-classes" in reductions:
            same: dict[Input, list[int]] = {}
            for i in range(n):
                if not optional[i]:
                    same.setdefault(inputs[i], []).append(i)
            for group in same.values():
                group.sort(key=self.return_at.__getitem__)
                for k, i in enumerate(group):
                    self.earlier[i] = tuple(a for a in group[:k]
                                            if self.return_at[a] > self.invoke_at[i])
        # Doubly linked list of events: node 0 is the head, 1..m the events, m+1 the end.
        m = len(p.events)
        self.end = m + 1
        self.ev = [0, *p.events, -(1 << 40)]
        self.nxt = list(range(1, m + 3))
        self.prv = list(range(-1, m + 1))
        self.ret_node = [-1] * n
        for node in range(1, m + 1):
            if self.ev[node] < 0:
                self.ret_node[~self.ev[node]] = node

    def intern(self, state: Any) -> int:
        sid = self.state_ids.get(state)
        if sid is None:
            sid = self.state_ids[state] = len(self.states)
            self.states.append(state)
            self.state_bytes += sys.getsizeof(state) + 100  # + the list and dict slots
        return sid

    def transition(self, c: int, sid: int) -> int:
        """Step state `sid` by input class `c` (memoised); -1 when illegal."""
        after = self.step(self.states[sid], self.class_input[c])
        if after is ILLEGAL:
            result = -1
        else:
            result = self.intern(self.canonical(after) if self.canonical else after)
        self.transitions[c][sid] = result
        return result


def search(p: Problem) -> Generator[int, int, Outcome]:
    """The search as a generator: `send(n)` runs about n steps, then yields the bytes it holds
    (an estimate: remembered nodes and interned states).

    The caller drives it step budget by step budget so several keys can share the time; the
    result arrives as the StopIteration value.
    """
    t = _Tables(p)
    # The hot loop reads locals only.
    ev, nxt, prv, ret_node, end = t.ev, t.nxt, t.prv, t.ret_node, t.end
    tclass, transitions, transition = t.tclass, t.transitions, t.transition
    optional, required, blind, stutter = t.optional, t.required, t.blind, t.stutter
    iclass, members, number = t.iclass, t.members, t.number
    earlier, invoke_at, return_at = t.earlier, t.invoke_at, t.return_at
    due = [_FAR, *(return_at[e] if e >= 0 else _FAR for e in ev[1:])].__getitem__  # by node
    cursor = [0] * len(members)  # per info class: its earliest member not linearized
    placed = [False] * len(optional)
    skip_no_ops = "info-no-ops" in p.reductions
    greedy = "greedy-stutter" in p.reductions

    # Nodes visited: (low, mask, state, info set, last was info). Every one not on the stack
    # has been explored and failed.
    seen: set[tuple[int, int, int, int, bool]] = set()
    # Before each step: (invoke node, state, low, mask, extra, after, frontier), whether it
    # was forced, and the node's candidates and position among them
    stack: list[tuple[int, int, int, int, int, bool, int, bool, list[int], int]] = []
    remaining = t.completed
    chain: tuple = ()  # the calls linearized so far, newest first, as nested pairs
    best: tuple = ()  # the chain that linearized the most completed calls
    best_remaining = remaining + 1
    state = t.start
    low = mask = 0  # completed calls linearized (see _Tables)
    extra = 0  # info calls linearized, as a bitset
    after = False  # the last call linearized was an info call
    fresh = True  # at a node not yet scanned for its window
    cands: list[int] = []  # the window's invoke nodes, soonest return first
    ci = 0  # the next of them to try
    frontier = _FAR  # history index of the first pending return: the window's end
    entry = nxt[0]
    per_node = node_bytes(len(optional))
    budget = yield t.state_bytes
    while True:
        if remaining == 0:
            return Outcome(True, _unchain(chain))
        budget -= 1
        if budget <= 0:
            budget = yield len(seen) * per_node + t.state_bytes
        forced = False
        if fresh:
            # A completed call that never changes the state (a read, a failed cas) and is legal
            # here goes first: in any valid order it can move here, since everything that had
            # to precede it is placed and removing it from later changes no later state.
            fresh = False
            node_ = nxt[0]
            op = ev[node_]
            cands = []
            while op >= 0:
                cands.append(node_)
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
                frontier = _FAR if node_ == end else return_at[~op]
                cands.sort(key=due)
                ci = 0
        if not forced:
            entry = cands[ci] if ci < len(cands) else end
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
            for a in earlier[op]:
                if not placed[a] and invoke_at[a] < frontier:
                    break  # an identical call that returns sooner goes first
            else:
                a = -1
            c = iclass[op]
            if a < 0 and (c < 0 or members[c][cursor[c]] == op) and (
                    required[op] < 0 or required[op] == state) and not (after and blind[op]):
                new = transitions[tclass[op]].get(state)
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
                ci += 1
                continue
        if place:
            seen.add(node)
            stack.append((entry, state, low, mask, extra, after, frontier, forced, cands, ci))
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
            chain = (op, chain)
            if remaining < best_remaining:
                best_remaining = remaining
                best = chain
            state, low, mask, extra, after = node[2], low2, mask2, extra2, c >= 0
            fresh = True
            continue
        # This node fails (a return came before its call, or its forced step failed): back
        # up; a node whose forced step failed fails as a whole, so keep backing up past it.
        while True:
            if not stack:
                return Outcome(False, _unchain(best))
            entry, state, low, mask, extra, after, frontier, forced, cands, ci = stack.pop()
            op = ev[entry]
            placed[op] = False
            chain = chain[1]
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
        ci += 1


def _unchain(chain: tuple) -> list[int]:
    order = []
    while chain:
        order.append(chain[0])
        chain = chain[1]
    order.reverse()
    return order

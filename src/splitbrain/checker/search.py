"""The linearizability search for one key: Wing–Gong with Lowe's just-in-time restriction.

The completed calls of one key become a doubly linked list of invoke and return events in
history order; a linearized call is lifted out of it. At each node of the search the window is
the invokes before the first pending return (the just-in-time restriction: nothing invoked
after a pending call returned may go before it), then the info calls invoked before it that
head their class (below). Each call of the window is tried next, the ones that return soonest
first (a large saving over list order on busy keys): step the model, skip the node if it was
seen before (a node is the linearized set and the state), else go deeper. When every candidate
fails the node fails and the search backs up. Info calls stay out of the list: a long history
gathers thousands of them, and walking them all at every node made the time per call grow
with the history.

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
  a completed call pinned to no state fails the key as soon as it is the next to return;
- a completed call that never changes the state (a read, a failed cas) and is legal now is
  linearized now without trying alternatives: every call that had to precede it is already
  placed, and taking it out of a later place changes no state after it ("greedy-stutter");
- completed calls with identical inputs: among those already invoked, only the one that
  returns first is a candidate; swapping two of them in a valid order keeps it valid
  ("ok-classes").
Fails are dropped unless they observe the state (a cas-mismatch under the default semantics).

The pipeline: compile_problem (the calls the search sees, as model Inputs) -> tables() (the
Tables both engines read: ints per call, interned states and input classes) -> search() here
or compiled_search(), the same loop in C (_core.Search), step for step. For the built-in
models (registers, kv) KeyedCalls.native() does all of it in C from the history encoded once
(_core.encode), with the model's steps and reduction native and no Python object per call;
anything of unusual shape takes the Python compile.
"""

from __future__ import annotations

import bisect
import functools
import sys
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

from splitbrain.checker.models import CAS_REGISTER, ILLEGAL, KV, NOWHERE, Input, Model, freeze
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


def kept_calls(calls: Sequence[Call], model: Model, fail_means_no_effect: bool,
               reductions: frozenset[str]) -> list[tuple[Call, str]]:
    """The calls the search places, with what it sees of each (kept_outcome)."""
    kept = []
    for call in calls:
        outcome = kept_outcome(call, model, fail_means_no_effect)
        if outcome is None or (outcome == "info" and call.f in model.reads
                               and "info-reads" in reductions):
            continue
        kept.append((call, outcome))
    return kept


def compile_problem(
    key: str | None,
    calls: Sequence[Call],
    model: Model,
    initial: Any,
    *,
    fail_means_no_effect: bool = False,
    reductions: frozenset[str] = REDUCTIONS,
) -> Problem:
    pairs = kept_calls(calls, model, fail_means_no_effect, reductions)
    kept = [call for call, _ in pairs]
    inputs = [to_input(call, outcome) for call, outcome in pairs]
    state0 = model.init(freeze(initial))
    canonical = None
    placement: list[Any] = [None] * len(kept)
    if "model" in reductions and model.reduce is not None:
        reduction = model.reduce(inputs, state0)
        canonical = reduction.canonical
        for i, state in reduction.placement.items():
            placement[i] = state
    return Problem(key, model, kept, inputs, state0, [inp.outcome == "info" for inp in inputs],
                   placement, canonical, reductions)


@dataclass(slots=True)
class Outcome:
    """How the search of one key ended."""

    valid: bool
    linearized: list[int]  # valid: a linearization; invalid: the longest linearizable prefix
    # invalid, from a native search: explain's selection made in C (Search.failure): the
    # prefix's calls, the plain model's state after each, the call to blame, concurrent calls
    failure: tuple[list[Call], list[Any], Call | None, list[Call]] | None = None


_FAR = 1 << 62  # a history index past every real one
_END = -(1 << 40)  # the event of the list's end node


def node_bytes(calls: int) -> int:
    """Rough size of one remembered search node in the Python engine: a 5-tuple of small ints
    and a set slot; the bitsets grow with the window of concurrent calls."""
    return 250 + min(calls, 4096) // 8


@dataclass(slots=True)
class Tables:
    """One key compiled for a search engine: per call (in invoke order) plain ints and bools,
    and the model as interned states and input classes. Both engines (search() here and the
    compiled one in _core) read exactly these; everything else they derive."""

    invoke_at: list[int]  # history index of the invoke
    return_at: list[int]  # history index of the return; _FAR for an info call
    optional: list[bool]  # info calls: may be left out
    tclass: list[int]  # input class (identical inputs share one)
    required: list[int]  # -1: any state; -2: no state; else the only state id it may follow
    blind: list[bool]  # never directly after an info call ("info-blind")
    stutter: list[bool]  # completed and never changes the state ("greedy-stutter")
    iclass: list[int]  # info calls: class of interchangeable calls ("info-classes"); else -1
    group: list[int]  # completed calls: class of identical inputs ("ok-classes"); else -1
    start: int  # the initial state's id
    skip_no_ops: bool  # "info-no-ops"
    greedy: bool  # "greedy-stutter"
    transition: Callable[[int, int], int]  # (class, state id) -> state id, -1 when illegal
    state_bytes: Callable[[], int]  # what the interned states hold


class _Interner:
    """States and input classes of one key as ints; transitions computed on demand."""

    def __init__(self, p: Problem) -> None:
        self.states: list[Any] = []
        self.state_ids: dict[Any, int] = {}
        self.bytes = 0  # what interned states hold (kv states are strings)
        self.canonical = p.canonical
        self.step = p.model.step
        self.class_input: list[Input] = []

    def intern(self, state: Any) -> int:
        sid = self.state_ids.get(state)
        if sid is None:
            sid = self.state_ids[state] = len(self.states)
            self.states.append(state)
            self.bytes += sys.getsizeof(state) + 100  # + the list and dict slots
        return sid

    def transition(self, c: int, sid: int) -> int:
        """Step state `sid` by input class `c`; -1 when illegal. The engines memoise it."""
        after = self.step(self.states[sid], self.class_input[c])
        if after is ILLEGAL:
            return -1
        return self.intern(self.canonical(after) if self.canonical else after)


def tables(p: Problem) -> Tables:
    """The compiled form of a problem, for any model."""
    inputs, optional, reductions = p.inputs, p.optional, p.reductions
    model = p.model
    t = _Interner(p)
    start = t.intern(p.canonical(p.initial) if p.canonical else p.initial)
    class_of: dict[Input, int] = {}
    tclass = [class_of.setdefault(inp, len(class_of)) for inp in inputs]
    t.class_input = list(class_of)
    required = [-1 if s is None else -2 if s is NOWHERE else t.intern(s) for s in p.placement]
    by_input: dict[Any, int] = {}
    iclass = [-1] * len(inputs)
    group = [-1] * len(inputs)
    for i, inp in enumerate(inputs):
        if optional[i]:
            key = inp if "info-classes" in reductions else i
            iclass[i] = by_input.setdefault(key, len(by_input))
        elif "ok-classes" in reductions:
            group[i] = tclass[i]
    blind = [inp.f in model.blind and "info-blind" in reductions for inp in inputs]
    stutter = [not optional[i] and (inp.f in model.reads or inp.outcome == "fail")
               for i, inp in enumerate(inputs)]
    return Tables(
        invoke_at=[c.invoke_index for c in p.calls],
        return_at=[_FAR if c.complete_index is None else c.complete_index for c in p.calls],
        optional=list(optional), tclass=tclass, required=required, blind=blind,
        stutter=stutter, iclass=iclass, group=group, start=start,
        skip_no_ops="info-no-ops" in reductions, greedy="greedy-stutter" in reductions,
        transition=t.transition, state_bytes=lambda: t.bytes)


def search(t: Tables) -> Generator[int, int, Outcome]:
    """The search as a generator: `send(n)` runs n steps, then yields the bytes it holds (an
    estimate: remembered nodes and interned states).

    The caller drives it step budget by step budget so several keys can share the time; the
    result arrives as the StopIteration value. `_core.Search` is the same loop compiled: it
    takes the same steps, so both give the same outcome after the same budgets.
    """
    n = len(t.optional)
    optional, invoke_at, return_at = t.optional, t.invoke_at, t.return_at
    tclass, required, blind, stutter = t.tclass, t.required, t.blind, t.stutter
    iclass, group = t.iclass, t.group
    # Completed calls are numbered in invoke order and their linearized set kept as (low,
    # mask): every call below `low` is linearized, bit j of `mask` is call low + j. Calls are
    # linearized roughly in order, so the key stays as small as the window of concurrent calls
    # instead of growing with the history. Info calls: their own bitset.
    number = [0] * n
    completed = info = 0
    for i in range(n):
        if optional[i]:
            number[i] = 1 << info
            info += 1
        else:
            number[i] = completed
            completed += 1
    # A doubly linked list of the completed calls' invokes and returns in history order:
    # node 0 is the head, 1..m the events (op for an invoke, ~op for a return), m+1 the end.
    # Info calls are not in it (nodes past the end): only the head of each class of identical
    # info calls is a candidate, so walking a thousand waiting info calls per node is avoided.
    order = sorted([(invoke_at[i], i) for i in range(n) if not optional[i]]
                   + [(return_at[i], ~i) for i in range(n) if not optional[i]])
    m = len(order)
    end = m + 1
    ev = [0, *(e for _, e in order), _END]
    nxt = list(range(1, m + 3))
    prv = list(range(-1, m + 1))
    ret_node = [-1] * n
    inv_node = [-1] * n
    for node in range(1, m + 1):
        e = ev[node]
        if e < 0:
            ret_node[~e] = node
    for i in range(n):
        if optional[i]:
            inv_node[i] = len(ev)
            ev.append(i)
    due = [_FAR] * len(ev)  # per node: when the call must have happened by
    for node in range(1, m + 1):
        if ev[node] >= 0:
            due[node] = return_at[ev[node]]
    due_of = due.__getitem__
    # Info classes: members in call order, -1 ends a class; `heads` are the classes ordered by
    # the invoke of their earliest member not linearized (exhausted classes last).
    members: list[list[int]] = [[] for _ in range(max(iclass, default=-1) + 1)]
    for i in range(n):
        if iclass[i] >= 0:
            members[iclass[i]].append(i)
    for ms in members:
        ms.append(-1)
    cursor = [0] * len(members)

    def head_at(c: int) -> int:
        h = members[c][cursor[c]]
        return _FAR if h < 0 else invoke_at[h]

    heads = sorted(range(len(members)), key=head_at)
    # ok-classes: per group its members by return; an invoked member is a candidate only if no
    # member returning sooner is invoked and not linearized. gfirst: first not linearized.
    gmembers: dict[int, list[int]] = {}
    for i in range(n):
        if group[i] >= 0:
            gmembers.setdefault(group[i], []).append(i)
    gpos = [0] * n
    for ms in gmembers.values():
        ms.sort(key=return_at.__getitem__)
        for k, i in enumerate(ms):
            gpos[i] = k
    gfirst = dict.fromkeys(gmembers, 0)

    memo: list[dict[int, int]] = [{} for _ in range(max(tclass, default=-1) + 1)]
    transition_ = t.transition

    def transition(c: int, sid: int) -> int:
        new = memo[c][sid] = transition_(c, sid)
        return new

    placed = [False] * n
    skip_no_ops, greedy = t.skip_no_ops, t.greedy
    # Nodes explored that failed: (low, mask, state, info set, last was info). A node is
    # remembered when the search backs up out of it, not when it enters: the nodes on the path
    # are never looked up (a node below one has more calls placed), and a search that never
    # backs up (most keys of a valid history) then keeps nothing.
    seen: set[tuple[int, int, int, int, bool]] = set()
    # Before each step: (node, state, low, mask, extra, after, frontier), whether it was
    # forced, and the node's candidates and position among them
    stack: list[tuple[int, int, int, int, int, bool, int, bool, list[int], int]] = []
    remaining = completed
    chain: tuple = ()  # the calls linearized so far, newest first, as nested pairs
    best: tuple = ()  # the chain that linearized the most completed calls
    best_remaining = remaining + 1
    state = t.start
    low = mask = 0
    extra = 0  # info calls linearized, as a bitset
    after = False  # the last call linearized was an info call
    fresh = True  # at a node not yet scanned for its window
    cands: list[int] = []  # the window's nodes, soonest return first, then info heads
    ci = 0  # the next of them to try
    frontier = _FAR  # history index of the first pending return: the window's end
    entry = 0
    per_node = node_bytes(n)
    budget = yield t.state_bytes()
    while True:
        if remaining == 0:
            return Outcome(True, _unchain(chain))
        budget -= 1
        if budget <= 0:
            budget = yield len(seen) * per_node + t.state_bytes()
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
                    new = memo[tclass[op]].get(state)
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
                if node_ != end and required[~op] == -2:
                    # the call that must go next can happen in no state: no order will do,
                    # and the calls placed so far are the prefix that explains it
                    return Outcome(False, _unchain(best))
                frontier = _FAR if node_ == end else return_at[~op]
                cands.sort(key=due_of)
                for c in heads:
                    h = members[c][cursor[c]]
                    if h < 0 or invoke_at[h] >= frontier:
                        break
                    cands.append(inv_node[h])
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
            g = group[op]
            blocked = False
            if g >= 0:
                ms = gmembers[g]
                for k in range(gfirst[g], gpos[op]):
                    a = ms[k]
                    if not placed[a] and invoke_at[a] < frontier:
                        blocked = True  # an identical call that returns sooner goes first
                        break
            c = iclass[op]
            if not blocked and (required[op] < 0 or required[op] == state) and not (
                    after and blind[op]):
                new = memo[tclass[op]].get(state)
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
            stack.append((entry, state, low, mask, extra, after, frontier, forced, cands, ci))
            placed[op] = True
            r = ret_node[op]
            if r >= 0:  # lift the call's invoke and return out of the list
                a, b = prv[entry], nxt[entry]
                nxt[a] = b
                prv[b] = a
                a, b = prv[r], nxt[r]
                nxt[a] = b
                prv[b] = a
                remaining -= 1
                g = group[op]
                if g >= 0 and gpos[op] == gfirst[g]:
                    ms = gmembers[g]
                    k = gfirst[g] + 1
                    while k < len(ms) and placed[ms[k]]:
                        k += 1
                    gfirst[g] = k
            else:
                cursor[c] += 1
                heads.remove(c)
                bisect.insort(heads, c, key=head_at)
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
            seen.add((low, mask, state, extra, after))
            entry, state, low, mask, extra, after, frontier, forced, cands, ci = stack.pop()
            op = ev[entry]
            placed[op] = False
            chain = chain[1]
            r = ret_node[op]
            if r >= 0:
                nxt[prv[r]] = r
                prv[nxt[r]] = r
                nxt[prv[entry]] = entry
                prv[nxt[entry]] = entry
                remaining += 1
                g = group[op]
                if g >= 0 and gpos[op] < gfirst[g]:
                    gfirst[g] = gpos[op]
            else:
                c = iclass[op]
                cursor[c] -= 1
                heads.remove(c)
                bisect.insort(heads, c, key=head_at)
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


try:  # built by `pip install` where a C compiler exists (setup.py); optional
    from splitbrain import _core
except ImportError:  # pragma: no cover - exercised on machines without a compiler
    _core = None
else:
    _core.use_call(Call)

# The engines this install has, preferred first: "compiled" (_core.Search) and "python".
ENGINES: tuple[str, ...] = ("compiled", "python") if _core is not None else ("python",)

# Call.to_json, in C where it was built (explanations make one per call they show)
call_json: Callable[[Call], dict[str, Any]] = (Call.to_json if _core is None
                                               else _core.call_json)


def compiled_search(t: Tables) -> Generator[int, int, Outcome]:
    """_core.Search behind search()'s generator protocol (the same steps per budget)."""
    return _drive(_core.Search(t), t.state_bytes, None)


def _drive(s: Any, state_bytes: Callable[[], int], failures: int | None
           ) -> Generator[int, int, Outcome]:
    budget = yield s.held + state_bytes()
    while True:
        done = s.run(budget)
        if done is not None:
            valid, linearized = done
            failure = None if valid or failures is None else s.failure(failures)
            return Outcome(valid, linearized, failure)
        budget = yield s.held + state_bytes()


class KeyedCalls:
    """A history's calls by key, for the searches: `keys` (in first-appearance order),
    `functions` (the functions used), `calls(key)` and `size(key)`; `native(...)` is the
    compiled search of a key for the built-in models, or None.

    With the compiled core the calls are encoded once (_core.encode: compact records per key,
    in one pass over the history) and each key's search is compiled from its records;
    otherwise they are grouped in Python and `native` is always None.
    """

    def __init__(self, calls: list[Call], compiled: bool = True) -> None:
        self._encoded = _core.encode(calls) if compiled and _core is not None else None
        if self._encoded is not None:
            self.keys: list[Any] = self._encoded.keys
            self.functions: set[str] = self._encoded.functions
            self._number = {key: i for i, key in enumerate(self.keys)}
            return
        self._by_key: dict[Any, list[Call]] = {}
        for c in calls:
            self._by_key.setdefault(c.key, []).append(c)
        self.keys = list(self._by_key)
        self.functions = {c.f for c in calls}

    def calls(self, key: Any) -> list[Call]:
        if self._encoded is None:
            return self._by_key[key]
        return self._encoded.calls(self._number[key])

    def size(self, key: Any) -> int:
        if self._encoded is None:
            return len(self._by_key[key])
        return self._encoded.size(self._number[key])

    def native(self, key: Any, model: Model, initial: Any, *, fail_means_no_effect: bool = False,
               reductions: frozenset[str] = REDUCTIONS, failures: int | None = None
               ) -> Generator[int, int, Outcome] | None:
        """The key's search compiled in C from its records, for the built-in models; None when
        that path does not apply (no compiled core, another model, a value of unusual shape:
        the Python path then handles or reports it). `failures`: for an invalid key, the
        number of concurrent calls Search.failure() selects for the explanation (None: none)."""
        made = self.native_tables(key, model, initial, fail_means_no_effect=fail_means_no_effect,
                                  reductions=reductions, as_search=True)
        return None if made is None else _drive(made, _no_bytes, failures)

    def native_tables(self, key: Any, model: Model, initial: Any, *,
                      fail_means_no_effect: bool = False, reductions: frozenset[str] = REDUCTIONS,
                      as_search: bool = False) -> Any:
        """The tables the native compile makes, as a tuple (for the tests: they compare them
        with tables()), or its Search (as_search); None when the native path does not apply."""
        kind = _NATIVE.get(model.step)
        if self._encoded is None or kind is None:
            return None
        return self._encoded.search(self._number[key], kind, initial, fail_means_no_effect,
                                    _flags(reductions), model.fs, as_search)


_NATIVE = {CAS_REGISTER.step: 0, KV.step: 1}  # the models _core steps natively
_FLAGS = {"info-reads": 1, "info-no-ops": 2, "info-blind": 4, "info-classes": 8, "model": 16,
          "greedy-stutter": 32, "ok-classes": 64}


@functools.cache  # once per set: a check of a small history pays for little else
def _flags(reductions: frozenset[str]) -> int:
    return sum(_FLAGS[r] for r in reductions)


def _no_bytes() -> int:
    return 0

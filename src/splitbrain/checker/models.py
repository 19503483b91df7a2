"""Models: what a correct single copy of the system would do, as records of pure functions.

A `Model` is data (Porcupine's idea): `init` turns the initial value into a state, `step` takes a
state and one call's `Input` and returns the next state or `ILLEGAL`, `describe_state` and
`reason` explain a failure in one line. States must be hashable; the search interns them as
integers, so `step` runs once per distinct (state, input) pair however often the search needs it.

`reduce` (optional) looks at every call of one key before the search and returns a `Reduction`:
states that no later call can tell apart, and calls that can only take effect in one state.
Each rule must be sound for its model alone; tests check the search against a brute-force checker.

To add a model, build a `Model` and put it in `MODELS`.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from typing import Any, NamedTuple


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


ILLEGAL: Any = _Marker("ILLEGAL")  # step's answer when the call cannot happen in that state
NOWHERE: Any = _Marker("NOWHERE")  # a placement no state satisfies (observations contradict)


class Input(NamedTuple):
    """What a model sees of one call. Values are frozen (lists become tuples) so it hashes.
    A NamedTuple: one is made per call, and a frozen dataclass costs five times as much."""

    f: str
    value: Any  # the invocation's argument
    output: Any  # what an ok call returned (the value read); None otherwise
    outcome: str  # "ok"; "fail" when the failure is an observation (cas-mismatch); "info"


@dataclass(frozen=True, slots=True)
class Reduction:
    """Facts about one key's calls that shrink the search without changing its answer."""

    # state -> a representative of the states no future call can tell apart from it
    canonical: Callable[[Any], Any] | None = None
    # call position -> the only state it can take effect in (NOWHERE: none)
    placement: dict[int, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Model:
    name: str
    fs: frozenset[str]  # the functions it understands
    reads: frozenset[str]  # functions that never change the state
    blind: frozenset[str]  # functions always legal whose next state ignores the current one
    observing_fails: frozenset[str]  # a fail of these observes the state (cas-mismatch)
    initial: Any  # the initial value unless --initial says otherwise
    init: Callable[[Any], Any]  # initial value -> state
    step: Callable[[Any, Input], Any]  # state, input -> next state or ILLEGAL
    describe_state: Callable[[Any], str]
    reason: Callable[[Any, Input], str]  # one line: why step(state, input) is ILLEGAL
    reduce: Callable[[Sequence[Input], Any], Reduction] | None = None  # inputs, initial state


def freeze(value: Any) -> Any:
    """A hashable copy of a JSON value: lists become tuples, objects sorted item tuples."""
    kind = type(value)
    if kind is list or kind is tuple:
        return tuple([freeze(v) for v in value])
    if kind is dict:
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    return value


def _show(value: Any) -> str:
    """A value as JSON (tuples shown as lists), for one-line messages. Ints, strings and null,
    what most states are, without json.dumps's setup (the same text)."""
    kind = type(value)
    if kind is int:
        return int.__repr__(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if value is None:
        return "null"
    return json.dumps(value, default=str)


# --- register and cas-register: one value per key; reads see it, cas compares it ---------------


def _register_step(state: Any, op: Input) -> Any:
    f = op.f
    if f == "read":
        return state if op.outcome != "ok" or op.output == state else ILLEGAL
    if f == "write":
        return op.value
    if f == "cas":
        expected, new = op.value
        if op.outcome == "ok":
            return new if state == expected else ILLEGAL
        if op.outcome == "fail":  # the compare failed: the value was not `expected`
            return state if state != expected else ILLEGAL
        return new if state == expected else state  # info: took effect or compared false
    return ILLEGAL


def _register_reason(state: Any, op: Input) -> str:
    if op.f == "read":
        return f"can't read {_show(op.output)} from register {_show(state)}"
    if op.f == "cas" and op.outcome == "fail":
        return f"cas {_show(op.value)} failed, yet register is {_show(state)}"
    if op.f == "cas":
        return f"can't cas {_show(op.value)} on register {_show(state)}"
    return f"register can't {op.f}"


def _register_reduce(inputs: Sequence[Input], initial: Any) -> Reduction:
    """Values no call compares against are interchangeable: collapse them into one. An ok read
    or cas that needs a value no call writes (and not the initial one) can happen nowhere."""
    observed = {op.output for op in inputs if op.f == "read" and op.outcome == "ok"}
    observed |= {op.value[0] for op in inputs if op.f == "cas"}
    unobserved = _Marker("unobserved value")
    written = {initial} | {op.value for op in inputs if op.f == "write"}
    written |= {op.value[1] for op in inputs if op.f == "cas" and op.outcome != "fail"}
    placement = {i: NOWHERE for i, op in enumerate(inputs) if op.outcome == "ok" and (
        op.output if op.f == "read" else op.value[0] if op.f == "cas" else initial) not in written}
    return Reduction(canonical=lambda state: state if state in observed else unobserved,
                     placement=placement)


_REGISTER_FIELDS: dict[str, Any] = {
    "reads": frozenset({"read"}),
    "blind": frozenset({"write"}),
    "observing_fails": frozenset({"cas"}),
    "initial": None,
    "init": freeze,
    "step": _register_step,
    "describe_state": _show,
    "reason": _register_reason,
    "reduce": _register_reduce,
}

REGISTER = Model("register", frozenset({"read", "write"}), **_REGISTER_FIELDS)
CAS_REGISTER = Model("cas-register", frozenset({"read", "write", "cas"}), **_REGISTER_FIELDS)


# --- kv: a string per key; get reads it, put replaces it, append extends it -------------------


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _kv_step(state: str, op: Input) -> Any:
    f = op.f
    if f == "get":
        return state if op.outcome != "ok" or _text(op.output) == state else ILLEGAL
    if f == "put":
        return _text(op.value)
    if f == "append":
        return state + _text(op.value)
    return ILLEGAL


def _kv_reason(state: str, op: Input) -> str:
    if op.f == "get":
        return f"can't get {_show(_text(op.output))} from a key holding {_show(state)}"
    return f"kv can't {op.f}"


def _kv_reduce(inputs: Sequence[Input], initial: str) -> Reduction:
    """Two rules that follow from appends only ever extending the string.

    Dead states: a state that is not a prefix of any value a get returned stays so under
    appends, so no get can succeed until a put replaces it; all such states are one.
    Placement: if a get's value splits in exactly one way into a start (the initial value or a
    put's value) followed by appended values, and the k-th of those values is appended by
    exactly one call, that call took effect in the state holding the first k-1 parts.
    """
    seen = sorted({_text(op.output) for op in inputs if op.f == "get" and op.outcome == "ok"})
    dead = "\0" * (max(map(len, seen), default=0) + 1)  # longer than any value read: dead

    def canonical(state: str) -> str:
        i = bisect.bisect_left(seen, state)
        return state if i < len(seen) and seen[i].startswith(state) else dead

    starts = {initial} | {_text(op.value) for op in inputs if op.f == "put"}
    writers = Counter(_text(op.value) for op in inputs if op.f == "append")
    by_length: dict[int, set[str]] = {}
    for token in writers:
        if token:
            by_length.setdefault(len(token), set()).add(token)
    placement: dict[int, Any] = {}
    where: dict[str, Any] = {}  # appended value -> the state it was appended to
    for value, cuts in _unique_splits(seen, starts, by_length):
        for a, b in cuts:
            token = value[a:b]
            if writers[token] != 1:
                continue
            before = where.get(token)
            if before is None:
                where[token] = value[:a]
            elif before is not NOWHERE and (len(before) != a or not value.startswith(before)):
                where[token] = NOWHERE  # two gets saw it after different prefixes
    positions = {_text(op.value): i for i, op in enumerate(inputs) if op.f == "append"}
    for token, state in where.items():
        placement[positions[token]] = state
    return Reduction(canonical=canonical, placement=placement)


def _unique_splits(values: Sequence[str], starts: set[str], by_length: dict[int, set[str]]):
    """For each value (sorted) that splits in exactly one way, the (start, end) of its appends
    not already reported for an earlier value (same prefix, same cuts).

    ways[j] counts (capped at 2) the splits of value[:j]; it depends only on value[:j], so a
    sorted walk reuses the entries of the common prefix with the previous value.
    """
    start_lengths = {len(s) for s in starts}
    ways: list[int] = []
    back: list[int] = []  # for ways[j] == 1: where the last part starts (-1: a start value)
    previous = reported = ""
    path: list[int] = []  # cut points of the last value reported, ascending
    path_points: set[int] = set()
    for value in values:
        common = _common_prefix(previous, value)
        del ways[common + 1:], back[common + 1:]
        for j in range(len(ways), len(value) + 1):
            count = 1 if j in start_lengths and value[:j] in starts else 0
            last = -1
            for length, tokens in by_length.items():
                if length <= j and ways[j - length] and value[j - length:j] in tokens:
                    count += ways[j - length]
                    last = j - length
            ways.append(min(count, 2))
            back.append(last)
        previous = value
        if ways[len(value)] != 1:
            continue
        # Below the common prefix with the last value reported, once this path meets a cut
        # point of that value's path, the rest is that path: already reported.
        known = _common_prefix(reported, value)
        cuts = []
        j = len(value)
        while back[j] >= 0 and not (j <= known and j in path_points):
            cuts.append((back[j], j))
            j = back[j]
        below = path[:bisect.bisect_right(path, j)] if j in path_points else [j]
        path = below + [b for _, b in reversed(cuts)]
        path_points = set(path)
        reported = value
        yield value, cuts


def _common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix, by binary search over slice comparisons (in C)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


KV = Model(
    "kv",
    frozenset({"get", "put", "append"}),
    reads=frozenset({"get"}),
    blind=frozenset({"put"}),
    observing_fails=frozenset(),
    initial="",
    init=_text,
    step=_kv_step,
    describe_state=_show,
    reason=_kv_reason,
    reduce=_kv_reduce,
)

MODELS: dict[str, Model] = {m.name: m for m in (REGISTER, CAS_REGISTER, KV)}


def infer_model(fs: set[str]) -> Model | None:
    """The built-in model whose functions cover these (register before cas-register)."""
    return next((m for m in MODELS.values() if fs <= m.fs), None)

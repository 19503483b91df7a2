"""Random small histories for comparing the search with the brute-force checker.

Each history comes from a simulated execution: every call takes effect at a hidden point inside
its interval (or, for info and some fails, maybe never), so a good share are linearizable; then
some outputs are replaced by arbitrary values so a good share are not. Value domains are tiny on
purpose, so duplicate values, ambiguous strings and interchangeable info calls are common.
"""

from __future__ import annotations

import random
from typing import Any

from splitbrain.checker.models import CAS_REGISTER, ILLEGAL, KV, REGISTER, Input, Model, freeze
from splitbrain.history import Call

REGISTER_VALUES = (0, 1, 2)
# Ambiguous pieces ("ab" is also "a" + "b") and uniquely decodable ones (single letters).
KV_TOKEN_POOLS = (("a", "b", "ab", "ba", ""), ("a", "b", "c", "d", "e"))


def _register_call(rng: random.Random, tokens: tuple[str, ...]) -> tuple[str, Any]:
    f = rng.choice(("read", "read", "write", "cas", "cas"))
    if f == "write":
        return f, rng.choice(REGISTER_VALUES)
    if f == "cas":
        return f, [rng.choice(REGISTER_VALUES), rng.choice(REGISTER_VALUES)]
    return f, None


def _plain_register_call(rng: random.Random, tokens: tuple[str, ...]) -> tuple[str, Any]:
    f = rng.choice(("read", "read", "write"))
    return f, rng.choice(REGISTER_VALUES) if f == "write" else None


def _kv_call(rng: random.Random, tokens: tuple[str, ...]) -> tuple[str, Any]:
    f = rng.choice(("get", "get", "put", "append", "append", "append"))
    return f, None if f == "get" else rng.choice(tokens)


def random_history(rng: random.Random, model: Model, initial: Any, *, max_calls: int = 7
                   ) -> list[Call]:
    """Calls of one key, in invoke order, with indices of a consistent history."""
    make = {KV: _kv_call, REGISTER: _plain_register_call}.get(model, _register_call)
    tokens = rng.choice(KV_TOKEN_POOLS)
    n = rng.randint(1, max_calls)
    processes = rng.randint(1, 3)
    # Build the event sequence: each process invokes, later completes; info retires it.
    events: list[tuple[str, int]] = []  # ("invoke"|"complete", call number)
    open_: dict[int, int] = {}  # process slot -> call number
    started = 0
    while started < n or open_:
        free = [p for p in range(processes) if p not in open_]
        if started < n and free and (not open_ or rng.random() < 0.5):
            open_[rng.choice(free)] = started
            events.append(("invoke", started))
            started += 1
        else:
            slot = rng.choice(sorted(open_))
            events.append(("complete", open_.pop(slot)))
    # Decide outcomes, then linearization points in event order, then outputs.
    specs = [make(rng, tokens) for _ in range(n)]
    kinds = [rng.choices(("ok", "fail", "info"), (6, 1, 2))[0] for _ in range(n)]
    pos = {("invoke", c): i for i, (k, c) in enumerate(events) if k == "invoke"}
    pos.update({("complete", c): i for i, (k, c) in enumerate(events) if k == "complete"})
    point = {c: rng.uniform(pos[("invoke", c)], pos[("complete", c)]) for c in range(n)}
    state = model.init(freeze(initial))
    outputs: dict[int, Any] = {}
    for c in sorted(range(n), key=point.__getitem__):
        f, value = specs[c]
        if kinds[c] == "fail" and f not in ("cas",):
            continue  # a definite failure: no effect
        if kinds[c] == "info" and rng.random() < 0.5:
            continue  # an indeterminate call that never happened
        if f in ("read", "get"):
            outputs[c] = state
            continue
        if f == "cas" and kinds[c] != "info":
            ok = state == value[0]
            kinds[c] = "ok" if ok else "fail"
        after = model.step(state, Input(f, freeze(value), None, "info"))
        state = state if after is ILLEGAL else after
    for c in range(n):
        f, _ = specs[c]
        if f in ("read", "get") and kinds[c] == "ok" and (c not in outputs or rng.random() < 0.2):
            outputs[c] = (rng.choice((None, *REGISTER_VALUES)) if model is not KV
                          else "".join(rng.choice(tokens) for _ in range(rng.randint(0, 3))))
        if f == "cas" and rng.random() < 0.1:
            kinds[c] = rng.choice(("ok", "fail"))  # a lying compare
    # Some calls never complete (the history was cut); fails get a reason.
    cut = rng.random() < 0.2
    calls = []
    process_of = {}
    next_process = processes
    for i, (kind, c) in enumerate(events):
        if kind == "invoke":
            process_of[c] = (i, next_process)
            next_process += 1
    for c in range(n):
        f, value = specs[c]
        invoke = pos[("invoke", c)]
        complete = pos[("complete", c)]
        typ = kinds[c]
        if cut and complete == len(events) - 1:
            typ, complete = "info", None
        error = None
        if typ == "fail":
            error = rng.choice(("cas-mismatch", None, "not-leader")) if f == "cas" else "not-leader"
        output = outputs.get(c) if typ == "ok" and f in ("read", "get") else None
        calls.append(Call(process_of[c][1], f, "k", value, output, typ, invoke, complete,
                          invoke, complete, None, error))
    return calls


MODELS = {"register": REGISTER, "cas-register": CAS_REGISTER, "kv": KV}

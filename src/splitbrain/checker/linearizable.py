"""The linearizability checker: split a history by key, search every key, merge the verdicts.

Keys are independent registers (P-compositionality), so each key is its own search. Searches are
generators; the scheduler runs them round-robin with step budgets that double each round, so a
hard key cannot starve easy ones, and the first illegal key found decides. Budgets count steps,
not seconds, so the same input always gives the same answer; only `time_limit` (a wall-clock
bound) and `memory_limit` (a bound on the search caches) can turn an undecided key "unknown",
always with a stated cause — never a wrong verdict.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from splitbrain.checker.explain import explain
from splitbrain.checker.models import MODELS, Input, Model, freeze, infer_model
from splitbrain.checker.search import (
    ENGINES,
    REDUCTIONS,
    Outcome,
    compile_problem,
    compiled_search,
    search,
    tables,
    to_input,
)
from splitbrain.history import Call, History, pair_calls

DEFAULT_MEMORY_LIMIT = 1 << 30  # bytes the search caches may use together
FIRST_BUDGET = 2_000  # steps per key in the first round
MAX_BUDGET = 50_000  # steps per slice: bounds how far memory and time can overshoot
_DEFAULT: Any = object()


class ModelError(ValueError):
    """The history does not fit the model (an unknown function, no model fits)."""


def resolve_model(calls: Sequence[Call], model: Model | str | None) -> Model:
    if isinstance(model, Model):
        chosen = model
    elif model is not None:
        if model not in MODELS:
            raise ModelError(f"unknown model {model!r} (known: {', '.join(MODELS)})")
        chosen = MODELS[model]
    else:
        fs = {c.f for c in calls}
        found = infer_model(fs)
        if found is None:
            raise ModelError(f"no model understands functions {sorted(fs)}; pass --model")
        chosen = found
    state = chosen.init(freeze(chosen.initial))
    tried: set[Input] = set()
    for c in calls:
        if c.f not in chosen.fs:
            raise ModelError(f"op {c.invoke_index}: model {chosen.name} has no function {c.f!r}")
        inp = to_input(c, c.type)
        if inp in tried:
            continue
        tried.add(inp)
        try:  # a value of the wrong shape (a cas that is not a pair) fails here, not mid-search
            chosen.step(state, inp)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"op {c.invoke_index}: model {chosen.name} cannot {c.f} "
                             f"{json.dumps(c.value, default=str)}: {exc}") from None
    return chosen


def check(
    history: History | Sequence[Call],
    model: Model | str | None = None,
    *,
    initial: Any = _DEFAULT,
    fail_means_no_effect: bool = False,
    time_limit: float | None = None,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
    reductions: frozenset[str] = REDUCTIONS,
    engine: str | None = None,
) -> dict[str, Any]:
    """Check a history (or its calls) for linearizability; a JSON-able result.

    `{"valid": true|false|"unknown", "cause": ..., "model", "keys", "calls", "failure"?,
    "undecided"?, "engine"}`; raises ModelError when the history does not fit the model.
    `engine` picks the search engine ("compiled" or "python"; default: the first of ENGINES).
    """
    engine = engine or ENGINES[0]
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r} is not available here (have: {', '.join(ENGINES)})")
    started = time.perf_counter()
    calls = pair_calls(history.ops) if isinstance(history, History) else list(history)
    chosen = resolve_model(calls, model)
    if initial is _DEFAULT:
        initial = chosen.initial
    by_key: dict[str | None, list[Call]] = {}
    for c in calls:
        by_key.setdefault(c.key, []).append(c)
    keys = sorted(by_key, key=lambda k: (k is not None, _natural(k)))
    result: dict[str, Any] = {"model": chosen.name, "keys": len(keys), "calls": len(calls),
                              "engine": engine}
    if not calls:
        return {"valid": "unknown", "cause": "no client operations to check", **result}
    problems = {k: compile_problem(k, by_key[k], chosen, initial,
                                   fail_means_no_effect=fail_means_no_effect,
                                   reductions=reductions) for k in keys}
    verdict, detail = _schedule(problems, engine, started, time_limit, memory_limit)
    result["check_time_s"] = round(time.perf_counter() - started, 6)
    if verdict is True:
        return {"valid": True, **result}
    if verdict is False:
        key, outcome = detail
        failure = explain(problems[key], outcome)
        where = "" if key is None else f"key {key}: "
        return {"valid": False, "cause": f"{where}{failure['reason']}", "failure": failure,
                **result}
    undecided, why = detail
    return {"valid": "unknown", "cause": why, "undecided": [str(k) for k in undecided], **result}


def _schedule(problems: dict, engine: str, started: float, time_limit: float | None,
              memory_limit: int):
    """Round-robin over the keys' searches. Returns (True, None), (False, (key, outcome)) or
    ("unknown", (undecided keys, cause))."""
    running: dict[Any, list[Any]] = {}  # key -> [search, bytes it holds]
    for key, problem in problems.items():
        t = tables(problem)
        gen = compiled_search(t) if engine == "compiled" else search(t)
        running[key] = [gen, next(gen)]
    abandoned: dict[Any, str] = {}
    budget = FIRST_BUDGET
    while running:
        for key in list(running):
            gen = running[key][0]
            try:
                running[key][1] = gen.send(budget)
            except StopIteration as stop:
                outcome: Outcome = stop.value
                del running[key]
                if not outcome.valid:
                    return False, (key, outcome)
                continue
            if time_limit is not None and time.perf_counter() - started > time_limit:
                causes = dict(abandoned)
                causes.update({k: f"time limit of {time_limit:g} s reached" for k in running})
                return "unknown", _unknown(causes)
            if sum(held for _, held in running.values()) > memory_limit:
                worst = max(running, key=lambda k: running[k][1])
                abandoned[worst] = (f"search cache passed the memory limit of "
                                    f"{memory_limit / 2**20:.0f} MiB")
                running[worst][0].close()
                del running[worst]
        budget = min(budget * 2, MAX_BUDGET)
    if abandoned:
        return "unknown", _unknown(abandoned)
    return True, None


def _unknown(causes: dict[Any, str]) -> tuple[list[Any], str]:
    keys = sorted(causes, key=_natural)
    first = causes[keys[0]]
    named = ", ".join("(no key)" if k is None else str(k) for k in keys[:10])
    more = f" and {len(keys) - 10} more" if len(keys) > 10 else ""
    return keys, f"{first}; undecided: {named}{more}"


def _natural(key: Any) -> tuple[int, str]:
    """Keys sort as numbers when they are numbers (k2 before k10 via length)."""
    text = "" if key is None else str(key)
    return (len(text), text)

"""The linearizability checker: split a history by key, search every key, merge the verdicts.

Keys are independent registers (P-compositionality), so each key is its own search. Searches are
generators; the scheduler runs them round-robin with step budgets that double each round, so a
hard key cannot starve easy ones, and the first illegal key found decides. A key is compiled
when its first turn comes and its first slice grows with its calls, so most keys finish in it
and leave memory at once. Budgets count steps, not seconds, so the same input always gives the
same answer; only `time_limit` (a wall-clock bound) and `memory_limit` (a bound on the search
caches) can turn an undecided key "unknown", always with a stated cause — never a wrong verdict.
Large histories are spread over the machine's cores (checker/parallel.py) with the same answer.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Generator, Sequence
from typing import Any

from splitbrain.checker.explain import MAX_CONCURRENT, explain
from splitbrain.checker.models import MODELS, Input, Model, freeze, infer_model
from splitbrain.checker.search import (
    ENGINES,
    REDUCTIONS,
    KeyedCalls,
    Outcome,
    compile_problem,
    compiled_search,
    search,
    tables,
    to_input,
)
from splitbrain.gcpause import paused
from splitbrain.history import Call, History, pair_calls

DEFAULT_MEMORY_LIMIT = 1 << 30  # bytes the search caches may use together
FIRST_BUDGET = 2_000  # steps per key in the first round, plus STEPS_PER_CALL per call
STEPS_PER_CALL = 4  # enough for most linearizable keys to finish in their first slice
PARALLEL_CALLS = 20_000  # histories this large are checked on every core
MAX_BUDGET = 50_000  # steps per slice: bounds how far memory and time can overshoot
_DEFAULT: Any = object()


class ModelError(ValueError):
    """The history does not fit the model (an unknown function, no model fits)."""


def choose_model(fs: set[str], model: Model | str | None) -> Model:
    """The model named, or the built-in one whose functions cover the history's (`fs`)."""
    if isinstance(model, Model):
        return model
    if model is not None:
        if model not in MODELS:
            raise ModelError(f"unknown model {model!r} (known: {', '.join(MODELS)})")
        return MODELS[model]
    found = infer_model(fs)
    if found is None:
        raise ModelError(f"no model understands functions {sorted(fs)}; pass --model")
    return found


def resolve_model(calls: Sequence[Call], model: Model | str | None) -> Model:
    """choose_model, then every call tried against it: ModelError names the first that does
    not fit (an unknown function, a value of the wrong shape)."""
    chosen = choose_model({c.f for c in calls}, model)
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


def knossos_reads(calls: Sequence[Call]) -> list[Call]:
    """Knossos's reading of its register models: an ok read of nil means the value is unknown
    and matches any state, so it constrains nothing and is left out. Histories written for
    Knossos rely on it; in history.jsonl a null read means "no value" and is kept."""
    return [c for c in calls if not (c.f == "read" and c.type == "ok" and c.output is None)]


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
    workers: int | None = None,
    describe_failure: bool = True,
) -> dict[str, Any]:
    """Check a history (or its calls) for linearizability; a JSON-able result.

    `{"valid": true|false|"unknown", "cause": ..., "model", "keys", "calls", "failure"?,
    "undecided"?, "engine"}`; raises ModelError when the history does not fit the model.
    `engine` picks the search engine ("compiled" or "python"; default: the first of ENGINES);
    `workers` the processes keys are spread over (default: one per core for large histories).
    `describe_failure=False` leaves out the explanation of an invalid key (its prefix, the op to
    blame): `failure` is then `{"key"}` alone, for callers that need only the verdict (shrinking
    a history, benchmarks against checkers that give only that).
    """
    engine = engine or ENGINES[0]
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r} is not available here (have: {', '.join(ENGINES)})")
    with paused():
        return _check(history, model, initial, fail_means_no_effect, time_limit, memory_limit,
                      reductions, engine, workers, describe_failure)


def _check(history: History | Sequence[Call], model: Model | str | None, initial: Any,
           fail_means_no_effect: bool, time_limit: float | None, memory_limit: int,
           reductions: frozenset[str], engine: str, workers: int | None,
           describe_failure: bool) -> dict[str, Any]:
    started = time.perf_counter()
    calls = pair_calls(history.ops) if isinstance(history, History) else list(history)
    keyed = KeyedCalls(calls, compiled=engine == "compiled")
    chosen = choose_model(keyed.functions, model)
    if initial is _DEFAULT:
        initial = chosen.initial
    keys = sorted(keyed.keys, key=lambda k: (k is not None, _natural(k)))
    result: dict[str, Any] = {"model": chosen.name, "keys": len(keys), "calls": len(calls),
                              "engine": engine}
    if "compiled" not in ENGINES:
        result["engine_note"] = ("the compiled core was not built (no C compiler when "
                                 "splitbrain was installed): the pure-Python search ran")
    if not calls:
        return {"valid": "unknown", "cause": "no client operations to check", **result}
    compiler = _Compiler(keyed, calls, chosen, initial, fail_means_no_effect, reductions, engine,
                         describe_failure)
    jobs = [(k, keyed.size(k)) for k in keys]
    if workers is None:
        workers = default_workers(len(calls), len(keys))
    verdict, detail = run_keys(jobs, compiler, started, time_limit, memory_limit, workers)
    result["check_time_s"] = round(time.perf_counter() - started, 6)
    if verdict is True:
        return {"valid": True, **result}
    if verdict is False:
        key, outcome, _ = detail
        where = "" if key is None else f"key {key}: "
        if not describe_failure:
            return {"valid": False, "cause": f"{where}no linearization", "failure": {"key": key},
                    **result}
        failure = explain(key, keyed.calls(key), chosen, initial, outcome,
                          fail_means_no_effect=fail_means_no_effect, reductions=reductions)
        return {"valid": False, "cause": f"{where}{failure['reason']}", "failure": failure,
                **result}
    undecided, why = detail
    return {"valid": "unknown", "cause": why, "undecided": [str(k) for k in undecided], **result}


class _Compiler:
    """Makes the search of one key: compiled in C where that path applies (it checks that
    every call fits the model), else in Python, after resolve_model has checked the whole
    history once (ModelError names its first call that does not fit)."""

    def __init__(self, keyed: KeyedCalls, calls: Sequence[Call], model: Model, initial: Any,
                 fail_means_no_effect: bool, reductions: frozenset[str], engine: str,
                 describe_failure: bool) -> None:
        self.keyed, self.calls, self.model, self.initial = keyed, calls, model, initial
        self.fail_means_no_effect, self.reductions, self.engine = (fail_means_no_effect,
                                                                   reductions, engine)
        self.failures = MAX_CONCURRENT if describe_failure else None
        self.resolved = False

    def search(self, key: Any) -> Generator[int, int, Outcome]:
        if self.engine == "compiled":
            made = self.keyed.native(key, self.model, self.initial,
                                     fail_means_no_effect=self.fail_means_no_effect,
                                     reductions=self.reductions, failures=self.failures)
            if made is not None:
                return made
        if not self.resolved:
            resolve_model(self.calls, self.model)
            self.resolved = True
        t = tables(compile_problem(key, self.keyed.calls(key), self.model, self.initial,
                                   fail_means_no_effect=self.fail_means_no_effect,
                                   reductions=self.reductions))
        return compiled_search(t) if self.engine == "compiled" else search(t)


def default_workers(calls: int, keys: int) -> int:
    """Processes for a check: one per core for large histories of several keys, else one."""
    if calls < PARALLEL_CALLS or keys < 2 or threading.active_count() > 1:
        return 1  # forking a threaded process is unsafe; small histories gain nothing
    return max(1, min(len(os.sched_getaffinity(0)), keys))


def run_keys(jobs: list[tuple[Any, int]], compiler: _Compiler, started: float,
             time_limit: float | None, memory_limit: int, workers: int = 1):
    """Search every key (jobs: each key with its number of calls); the verdict of the serial
    round-robin (_schedule), with the keys spread over `workers` processes. Returns what
    _schedule returns."""
    if workers <= 1 or not hasattr(os, "fork"):
        return _schedule(jobs, compiler, started, time_limit, memory_limit)
    from splitbrain.checker import parallel  # pickle and ctypes: only when forking

    order = {key: i for i, (key, _) in enumerate(jobs)}
    return parallel.run(jobs, workers, lambda part, board: _schedule(
        part, compiler, started, time_limit, memory_limit // workers, board, order))


def _schedule(jobs: list[tuple[Any, int]], compiler: _Compiler, started: float,
              time_limit: float | None, memory_limit: int, board: Any = None,
              order: dict[Any, int] | None = None):
    """Round-robin over the keys' searches, in key order. Returns (True, None), (False, (key,
    outcome, when)) or ("unknown", (undecided keys, cause)); `when` is (round, position) of the
    step that decided, so that several workers' first findings merge into the serial one.

    A key's first slice is FIRST_BUDGET plus a few steps per call, so most keys finish in it
    and their memory goes at once; later slices double up to MAX_BUDGET. `board`, when given,
    tells parallel workers the earliest finding so far (parallel.Board); `order` gives each
    key's position among all keys (default: its position in `jobs`).
    """
    running: dict[Any, list[Any]] = {}  # key -> [search, bytes it holds]
    abandoned: dict[Any, str] = {}
    budget = FIRST_BUDGET
    sizes = dict(jobs)
    position = order or {key: i for i, (key, _) in enumerate(jobs)}
    rnd = 0
    queued = len(jobs)  # keys not started yet (all of them until the first round ends)
    while running or queued:
        if board is not None and board.decided_before(rnd):
            return True, None  # an earlier finding elsewhere wins; this part cannot beat it
        order = list(running) if rnd else [key for key, _ in jobs]
        for key in order:
            if rnd == 0:
                queued -= 1
                gen = compiler.search(key)
                held = next(gen)
                running[key] = [gen, held]
                slice_ = budget + STEPS_PER_CALL * sizes[key]
            else:
                gen = running[key][0]
                slice_ = budget
            try:
                running[key][1] = gen.send(slice_)
            except StopIteration as stop:
                outcome: Outcome = stop.value
                del running[key]
                if not outcome.valid:
                    when = (rnd, position[key])
                    if board is not None:
                        board.post(when)
                    return False, (key, outcome, when)
                continue
            if time_limit is not None and time.perf_counter() - started > time_limit:
                causes = dict(abandoned)
                waiting = [k for k, _ in jobs[len(jobs) - queued:]] if rnd == 0 else []
                causes.update({k: f"time limit of {time_limit:g} s reached"
                               for k in [*running, *waiting]})
                return "unknown", _unknown(causes)
            if sum(held for _, held in running.values()) > memory_limit:
                worst = max(running, key=lambda k: running[k][1])
                abandoned[worst] = (f"search cache passed the memory limit of "
                                    f"{memory_limit / 2**20:.0f} MiB")
                running[worst][0].close()
                del running[worst]
        budget = min(budget * 2, MAX_BUDGET)
        rnd += 1
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

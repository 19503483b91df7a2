"""The compiled core against the pure-Python engine: the same tables, the same steps.

test_reductions.py checks both engines' verdicts against brute force on 30,000 histories;
here the finer promises: the native compile (registers and kv) makes exactly the tables
search.tables() makes, the compiled search takes the same steps (same outcome after any
budget), and parallel workers report what the serial round-robin reports.
"""

from __future__ import annotations

import random

import pytest

from splitbrain.checker import linearizable
from splitbrain.checker.linearizable import check
from splitbrain.checker.models import CAS_REGISTER, KV, REGISTER
from splitbrain.checker.search import (
    ENGINES,
    REDUCTIONS,
    KeyedCalls,
    call_json,
    compile_problem,
    compiled_search,
    search,
    tables,
)
from splitbrain.history import Call

from .histories import random_history

pytestmark = pytest.mark.skipif("compiled" not in ENGINES, reason="no compiled core here")
FIELDS = ("invoke_at", "return_at", "optional", "tclass", "blind", "stutter", "iclass", "group",
          "required")


def _run(gen, budget):
    next(gen)
    steps = 0
    while True:
        try:
            gen.send(budget)
            steps += 1
        except StopIteration as stop:
            return stop.value, steps


def _case(rng):
    model, initial = rng.choice([(REGISTER, None), (CAS_REGISTER, None), (CAS_REGISTER, 0),
                                 (KV, ""), (KV, "a")])
    calls = random_history(rng, model, initial, max_calls=9)
    reductions = REDUCTIONS if rng.random() < 0.5 else frozenset(
        rng.sample(sorted(REDUCTIONS), rng.randint(0, len(REDUCTIONS))))
    return model, initial, calls, reductions, rng.random() < 0.3


def test_native_tables_are_the_python_ones():
    """Registers and kv: the same calls kept, classes, reductions and required states (kv's
    states compared as the strings the ids stand for)."""
    rng = random.Random(11)
    compared = {REGISTER: 0, CAS_REGISTER: 0, KV: 0}
    while min(compared.values()) < 1_000:
        model, initial, calls, reductions, fmne = _case(rng)
        made = KeyedCalls(calls).native_tables("k", model, initial, fail_means_no_effect=fmne,
                                               reductions=reductions)
        expected = tables(compile_problem("k", calls, model, initial, fail_means_no_effect=fmne,
                                          reductions=reductions))
        assert made is not None, calls
        got = dict(zip([*FIELDS[:-1], "start", "required", "extra"], made, strict=True))
        for name in FIELDS:
            assert list(got[name]) == list(getattr(expected, name)), (name, calls)
        if model is KV:  # state ids: registers number values apart, kv interns as Python does
            states = expected.transition.__self__.states  # interned so far: start, required
            assert got["start"] == expected.start and got["extra"][:len(states)] == states, calls
        compared[model] += 1


def test_compiled_search_takes_the_same_steps():
    """Same outcome and the same number of budget slices, for every budget size."""
    rng = random.Random(12)
    for _ in range(1_500):
        model, initial, calls, reductions, fmne = _case(rng)
        problem = compile_problem("k", calls, model, initial, fail_means_no_effect=fmne,
                                  reductions=reductions)
        budget = rng.choice([1, 2, 3, 5, 50])
        expected = _run(search(tables(problem)), budget)
        assert _run(compiled_search(tables(problem)), budget) == expected, calls
        native = KeyedCalls(calls).native("k", model, initial, fail_means_no_effect=fmne,
                                          reductions=reductions)
        assert native is not None
        assert _run(native, budget) == expected, calls


def test_unusual_values_take_the_python_path():
    """A cas whose value is a string of two characters is legal in Python (it unpacks); the C
    compile leaves it to the Python path rather than guess. So does a kv value that is not a
    string (the model reads its str())."""
    calls = [Call(0, "cas", "k", "ab", None, "ok", 0, 1, 0, 1)]
    assert KeyedCalls(calls).native_tables("k", CAS_REGISTER, "a") is None
    assert check(calls, "cas-register", initial="a")["valid"] is True
    calls = [Call(0, "append", "k", 1, None, "ok", 0, 1, 0, 1),
             Call(0, "get", "k", None, "1", "ok", 2, 3, 2, 3)]
    assert KeyedCalls(calls).native_tables("k", KV, "") is None
    assert check(calls, "kv")["valid"] is True


def _keyed_history(rng, keys, bad_keys):
    calls = []
    offset = 0
    for k in range(keys):
        one = random_history(rng, CAS_REGISTER, None, max_calls=8)
        for c in one:
            output = c.output
            if k in bad_keys and c.f == "read" and c.type == "ok":
                output = 7  # never written: this key cannot be linearized
            end = None if c.complete_index is None else c.complete_index + offset
            calls.append(Call(c.process + 100 * k, c.f, f"k{k}", c.value, output, c.type,
                              c.start + offset, end, c.invoke_index + offset, end, None,
                              c.error))
        offset += 100
    return calls


@pytest.mark.parametrize("seed", range(6))
def test_parallel_workers_report_what_the_serial_run_reports(seed):
    rng = random.Random(seed)
    bad = set(rng.sample(range(30), rng.randint(0, 3)))
    calls = _keyed_history(rng, 30, bad)
    serial = check(calls, "cas-register", workers=1)
    for workers in (2, 3):
        parallel = check(calls, "cas-register", workers=workers)
        for result in (serial, parallel):
            result.pop("check_time_s", None)
        assert parallel == serial


def test_large_histories_use_every_core(monkeypatch):
    monkeypatch.setattr(linearizable, "PARALLEL_CALLS", 10)
    assert linearizable.default_workers(calls=100, keys=5) >= 1
    assert linearizable.default_workers(calls=5, keys=5) == 1
    assert linearizable.default_workers(calls=100, keys=1) == 1


@pytest.mark.parametrize("corrupt", [0, 2])
def test_parallel_workers_on_a_generated_history(tmp_path, corrupt):
    import io

    from splitbrain.history.stream import read_calls
    from splitbrain.testing.registers import generate

    path = tmp_path / "history.jsonl"
    text = io.StringIO()
    generate(text, calls=3_000, keys=12, processes=10, info=0.05, seed=3, corrupt=corrupt)
    path.write_text(text.getvalue())
    calls = read_calls(path).calls
    serial = check(calls, workers=1)
    parallel = check(calls, workers=2)
    assert serial["valid"] is (corrupt == 0)
    serial.pop("check_time_s")
    parallel.pop("check_time_s")
    assert parallel == serial


def test_the_verdict_alone_skips_the_explanation():
    calls = [Call(0, "write", "k", 1, 1, "ok", 0, 1, 0, 1),
             Call(0, "read", "k", None, 2, "ok", 2, 3, 2, 3)]
    full = check(calls, "cas-register")
    bare = check(calls, "cas-register", describe_failure=False)
    assert full["valid"] is bare["valid"] is False
    assert bare["failure"] == {"key": "k"} and full["failure"]["key"] == "k"
    assert "can't read 2" in full["cause"]


def test_call_json_is_to_json():
    calls = [Call(3, "cas", "k", [1, 2], None, "fail", 5, 9, 2, 7, "n1", "cas-mismatch"),
             Call("p", "read", None, None, {"a": [1]}, "ok", 0, None, 0, None, None, None, "c:1")]
    for call in calls:
        assert call_json(call) == call.to_json()
        assert list(call_json(call)) == list(call.to_json())  # the order JSON is written in


def test_encoding_keeps_each_keys_calls_in_order():
    rng = random.Random(5)
    calls = _keyed_history(rng, 7, set())
    rng.shuffle(calls)
    keyed = KeyedCalls(calls)
    assert keyed.keys == list(dict.fromkeys(c.key for c in calls))
    assert keyed.functions == {c.f for c in calls}
    for key in keyed.keys:
        mine = [c for c in calls if c.key == key]
        assert keyed.calls(key) == mine and keyed.size(key) == len(mine)

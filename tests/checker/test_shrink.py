"""Shrinking an invalid history: the minimal failing set is invalid, small, and evidence — no
closed subset of a linearizable history is ever reported invalid."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from splitbrain.checker.linearizable import check
from splitbrain.checker.shrink import closure, ddmin, shrink
from splitbrain.history import Call
from splitbrain.testing.runs import build_run
from tests.checker.histories import MODELS, random_history


def call(i: int, f: str, value, output, start: int, end: int | None, typ: str = "ok",
         process: int = 0) -> Call:
    """A call whose history indexes are its times (all distinct in these tests)."""
    return Call(process + i, f, "k", value, output, typ, start, end, start, end,
                None, "cas-mismatch" if typ == "fail" and f == "cas" else None)


def stale_read_history(noise: int = 40) -> list[Call]:
    """A write of 1, then of 2, then a read of 1 (stale), among many harmless calls."""
    rng = random.Random(5)
    calls = [call(0, "write", 1, None, 0, 10), call(1, "write", 2, None, 20, 30),
             call(2, "read", None, 1, 40, 50)]
    for i in range(3, 3 + noise):  # reads of 2 and writes of other values, all late
        t = 100 + 10 * i
        calls.append(call(i, "read", None, 2, t, t + 5) if rng.random() < 0.5
                     else call(i, "write", 2, None, t, t + 5))
    return calls


def test_a_stale_read_shrinks_to_the_two_writes_and_the_read():
    calls = stale_read_history()
    assert check(calls, "cas-register")["valid"] is False
    shrunk = shrink(calls, "cas-register", key="k")
    assert shrunk.before == len(calls)
    assert [(c.f, c.value, c.output) for c in shrunk.calls] == [
        ("write", 1, None), ("write", 2, None), ("read", None, 1)]
    assert shrunk.minimal and shrunk.result["valid"] is False
    assert "can't read 1" in shrunk.result["cause"]


def test_a_read_keeps_every_write_of_its_value_that_may_precede_it():
    # Two writes of 1: the read of 1 after the write of 2 is stale only if BOTH writes of 1
    # came before the write of 2. The set must keep both, or it would prove a false anomaly.
    calls = [call(0, "write", 1, None, 0, 10), call(1, "write", 2, None, 20, 30),
             call(2, "write", 1, None, 25, 60), call(3, "read", None, 1, 70, 80)]
    assert check(calls, "cas-register")["valid"] is True
    with pytest.raises(ValueError, match="not invalid"):
        shrink(calls, "cas-register", key="k")
    assert check(closure(MODELS["cas-register"], [calls[3], calls[1]], calls),
                 "cas-register")["valid"] is True


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_no_closed_subset_of_a_linearizable_history_is_invalid(model_name):
    model = MODELS[model_name]
    rng = random.Random(11)
    initial = model.initial
    tried = 0
    while tried < 300:
        calls = random_history(rng, model, initial, max_calls=8)
        if check(calls, model, initial=initial)["valid"] is not True:
            continue
        tried += 1
        chosen = [c for c in calls if rng.random() < 0.4]
        subset = closure(model, chosen, calls)
        assert check(subset, model, initial=initial)["valid"] is not False, (calls, subset)


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_shrinking_random_invalid_histories_gives_invalid_one_minimal_sets(model_name):
    model = MODELS[model_name]
    rng = random.Random(7)
    shrunk_some = 0
    while shrunk_some < 60:
        calls = random_history(rng, model, model.initial, max_calls=8)
        if check(calls, model)["valid"] is not False:
            continue
        shrunk_some += 1
        result = shrink(calls, model, key="k")
        assert result.result["valid"] is False
        assert {id(c) for c in result.calls} <= {id(c) for c in calls}
        kept = list(result.calls)
        for c in kept:  # 1-minimal: no single call can go (the closure may bring it back)
            rest = closure(model, [k for k in kept if k is not c], calls)
            assert len(rest) >= len(kept) or check(rest, model)["valid"] is not False


def test_ddmin_finds_the_one_culprit():
    items = list(range(50))
    found, minimal = ddmin(items, lambda xs: 37 in xs, deadline=float("inf"))
    assert found == [37] and minimal


def test_check_shrink_on_a_run_puts_the_minimal_set_in_results_and_the_report(tmp_path):
    run = build_run(tmp_path, failure="linearizability", seed=4, calls=300)
    out = subprocess.run([sys.executable, "-m", "splitbrain", "check", "--shrink", str(run.path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "minimal failing set: 1 of" in out.stdout  # nobody wrote 999999: the read alone
    shrunk = json.loads(run.results.read_text())["checkers"]["linearizable"]["shrunk"]
    assert shrunk["after"] == 1 and shrunk["before"] > 50
    assert shrunk["calls"][0]["output"] == 999999
    html = run.report.read_text()
    assert html.index('id="minimal"') < html.index('id="timeline-section"')
    assert html.index('id="minimal"') < html.index('id="failure"')

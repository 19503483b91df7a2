"""The checker's API: verdicts, semantics options, budgets, scheduling and explanations."""

from __future__ import annotations

import dataclasses

import pytest

from splitbrain.checker.linearizable import ModelError, check
from splitbrain.checker.models import ILLEGAL, MODELS, Model
from splitbrain.history import Call, pair_calls
from splitbrain.history.formats import load_history
from tests.checker.corpus import CORPUS, needs_corpus


class History:
    """Builds calls from (process, f, value, output, type, invoke line, completion line)."""

    def __init__(self):
        self.calls = []

    def add(self, process, f, value, output, type_, start, end, key="k", error=None):
        self.calls.append(Call(process, f, key, value, output, type_, start, end, start, end,
                               None, error))
        return self


def test_reason_names_value_and_state():
    h = History().add(0, "write", 0, None, "ok", 0, 1).add(1, "read", None, 3, "ok", 2, 3)
    result = check(h.calls, "register")
    assert result["valid"] is False
    assert result["cause"] == "key k: can't read 3 from register 0"
    failure = result["failure"]
    assert failure["key"] == "k" and failure["model"] == "register"
    assert failure["op"]["output"] == 3
    assert [step["state"] for step in failure["prefix"]] == ["0"]


def test_concurrent_calls_may_be_reordered():
    h = History().add(0, "write", 1, None, "ok", 0, 3).add(1, "read", None, 1, "ok", 1, 2)
    assert check(h.calls, "register")["valid"] is True


def test_info_write_may_take_effect_late_or_never():
    late = History().add(0, "write", 1, None, "info", 0, 1).add(1, "read", None, None, "ok", 2, 3)
    late.add(2, "read", None, 1, "ok", 4, 5)
    assert check(late.calls, "register")["valid"] is True
    # but not before it was invoked
    early = History().add(1, "read", None, 1, "ok", 0, 1).add(0, "write", 1, None, "info", 2, 3)
    assert check(early.calls, "register")["valid"] is False


def test_failed_cas_observes_unless_fail_means_no_effect():
    h = History().add(0, "write", 1, None, "ok", 0, 1)
    h.add(1, "cas", [1, 2], None, "fail", 2, 3, error="cas-mismatch")
    assert check(h.calls, "cas-register")["valid"] is False
    assert "cas [1, 2] failed, yet register is 1" in check(h.calls, "cas-register")["cause"]
    assert check(h.calls, "cas-register", fail_means_no_effect=True)["valid"] is True
    # a fail for any other reason did not happen: it observes nothing
    h.calls[1] = dataclasses.replace(h.calls[1], error="not-leader")
    assert check(h.calls, "cas-register")["valid"] is True


def test_initial_value():
    h = History().add(0, "read", None, 0, "ok", 0, 1)
    assert check(h.calls, "cas-register")["valid"] is False
    assert check(h.calls, "cas-register", initial=0)["valid"] is True


def test_keys_are_independent():
    h = History().add(0, "write", 1, None, "ok", 0, 1, key="a")
    h.add(1, "read", None, None, "ok", 2, 3, key="b")
    assert check(h.calls, "register")["valid"] is True


def test_model_is_inferred_and_checked():
    kv = History().add(0, "append", "x", None, "ok", 0, 1).add(1, "get", None, "x", "ok", 2, 3)
    assert check(kv.calls)["model"] == "kv"
    with pytest.raises(ModelError, match="model register has no function 'append'"):
        check(kv.calls, "register")
    with pytest.raises(ModelError, match="unknown model"):
        check(kv.calls, "nope")


def test_value_of_the_wrong_shape_is_a_model_error():
    h = History().add(0, "cas", 5, None, "ok", 0, 1)
    with pytest.raises(ModelError, match="op 0: model cas-register cannot cas 5: cannot unpack"):
        check(h.calls, "cas-register")


def test_user_model():
    """A model is a record of pure functions; users can build their own."""

    def step(state, op):
        if op.f == "incr":
            return state + 1
        return state if op.outcome != "ok" or op.output == state else ILLEGAL

    counter = Model("counter", frozenset({"incr", "read"}), reads=frozenset({"read"}),
                    blind=frozenset(), observing_fails=frozenset(), initial=0, init=int,
                    step=step, describe_state=str,
                    reason=lambda s, op: f"can't read {op.output} from counter {s}")
    h = History().add(0, "incr", None, None, "ok", 0, 1).add(1, "incr", None, None, "info", 2, 3)
    h.add(2, "read", None, 2, "ok", 4, 5)
    assert check(h.calls, counter)["valid"] is True
    h.add(3, "read", None, 1, "ok", 6, 7)
    assert check(h.calls, counter)["cause"] == "key k: can't read 1 from counter 2"
    assert "counter" not in MODELS


def test_empty_history_is_unknown():
    result = check([], "register")
    assert result["valid"] == "unknown" and result["cause"] == "no client operations to check"


HARD = frozenset()  # without reductions, key 0 of c50-bad is out of reach (as for Porcupine)


def _hard_and_bad():
    """Key "a": key 0 of c50-bad, hard without reductions; key "b": an easy illegal key."""
    hard = pair_calls(load_history(CORPUS / "kv" / "c50-bad.txt").ops)
    bad = pair_calls(load_history(CORPUS / "kv" / "c01-bad.txt").ops)
    return ([dataclasses.replace(c, key="a") for c in hard if c.key == "0"]
            + [dataclasses.replace(c, key="b") for c in bad if c.key == "7"])


@needs_corpus
def test_a_hard_key_does_not_starve_an_illegal_one():
    result = check(_hard_and_bad(), "kv", reductions=HARD)
    assert result["valid"] is False and result["failure"]["key"] == "b"


@needs_corpus
def test_time_limit_gives_unknown_with_a_cause():
    calls = [c for c in _hard_and_bad() if c.key == "a"]
    result = check(calls, "kv", time_limit=0.2, reductions=HARD)
    assert result["valid"] == "unknown"
    assert result["cause"].startswith("time limit of 0.2 s reached; undecided: a")
    assert result["undecided"] == ["a"]
    assert check(calls, "kv", time_limit=10)["valid"] is False  # decided with reductions


@needs_corpus
def test_memory_limit_gives_unknown_with_a_cause():
    calls = [c for c in _hard_and_bad() if c.key == "a"]
    result = check(calls, "kv", memory_limit=1 << 20, reductions=HARD)
    assert result["valid"] == "unknown"
    assert result["cause"].startswith("search cache passed the memory limit of 1 MiB")


@needs_corpus
def test_invalid_outranks_a_key_over_its_memory_budget():
    result = check(_hard_and_bad(), "kv", memory_limit=1, reductions=HARD)
    assert result["valid"] is False and result["failure"]["key"] == "b"


@needs_corpus
def test_same_input_same_answer():
    calls = pair_calls(load_history(CORPUS / "kv" / "c50-bad.txt").ops)
    first, second = check(calls), check(calls)
    first.pop("check_time_s"), second.pop("check_time_s")
    assert first == second

"""Every history of the Porcupine corpus (../shared/data/porcupine) gets its documented verdict."""

from __future__ import annotations

import pytest

from splitbrain.checker.linearizable import check
from splitbrain.checker.search import ENGINES
from splitbrain.history import pair_calls
from splitbrain.history.formats import load_history
from tests.checker.corpus import CORPUS, needs_corpus

pytestmark = needs_corpus

LINEARIZABLE = {2, 5, 7, 18, 25, 31, 38, 45, 48, 49, 51, 53, 56, 67, 75, 76, 80, 87, 92, 98,
                100, 101, 102}
EMPTY = 95
ETCD = [n for n in range(103) if n != EMPTY]
KV_VERDICTS = {"c01-ok": True, "c01-bad": False, "c10-ok": True, "c10-bad": False,
               "c50-ok": True, "c50-bad": False}
ILLEGAL_KEYS = {"c01-bad": {"7"}, "c10-bad": {"0", "1", "2", "3", "5", "6", "7", "9"},
                "c50-bad": {str(k) for k in range(10)}}


def test_verdict_counts_match_the_readme():
    assert len(LINEARIZABLE) == 23
    assert len(ETCD) - len(LINEARIZABLE) == 79


@pytest.mark.parametrize("number", ETCD)
def test_etcd_log(number):
    result = check(load_history(CORPUS / "jepsen" / f"etcd_{number:03d}.log"))
    assert result["model"] == "cas-register"
    assert result["valid"] is (number in LINEARIZABLE), result.get("cause")
    if not result["valid"]:
        failure = result["failure"]
        assert failure["op"] is not None and failure["reason"]
        assert all(step["state"] for step in failure["prefix"])


def test_empty_etcd_log_has_no_verdict():
    result = check(load_history(CORPUS / "jepsen" / f"etcd_{EMPTY:03d}.log"))
    assert result["valid"] == "unknown"
    assert "no client operations" in result["cause"]


@pytest.mark.parametrize("name", sorted(KV_VERDICTS))
def test_kv_log(name):
    result = check(load_history(CORPUS / "kv" / f"{name}.txt"))
    assert result["model"] == "kv"
    assert result["valid"] is KV_VERDICTS[name], result.get("cause")


@pytest.mark.parametrize("name", ["c01-ok", "c01-bad", "c10-ok", "c10-bad", "c50-ok", "c50-bad"])
def test_every_key_alone_is_decided_within_10_s(name):
    calls = pair_calls(load_history(CORPUS / "kv" / f"{name}.txt").ops)
    keys = sorted({c.key for c in calls})
    illegal = set()
    for key in keys:
        result = check([c for c in calls if c.key == key], "kv", time_limit=10)
        assert result["valid"] != "unknown", (key, result["cause"])
        if result["valid"] is False:
            illegal.add(key)
    assert illegal == ILLEGAL_KEYS.get(name, set())


def test_failure_names_the_op_and_gives_a_one_line_reason():
    result = check(load_history(CORPUS / "jepsen" / "etcd_000.log"))
    failure = result["failure"]
    assert failure["reason"] == "can't read 2 from register 0"
    assert failure["op"]["f"] == "read" and failure["op"]["output"] == 2
    assert failure["prefix"][-1]["state"] == "0"
    assert "\n" not in result["cause"]


@pytest.mark.skipif(len(ENGINES) < 2, reason="no compiled core here")
def test_engines_agree_on_every_history():
    """The compiled engine (native registers and kv) gives the pure-Python engine's result,
    failure included, on every file of the corpus."""
    paths = [CORPUS / "jepsen" / f"etcd_{n:03d}.log" for n in ETCD]
    paths += [CORPUS / "kv" / f"{name}.txt" for name in sorted(KV_VERDICTS)]
    for path in paths:
        calls = pair_calls(load_history(path).ops)
        results = [check(calls, engine=engine, workers=1) for engine in ENGINES]
        for result in results:
            result.pop("check_time_s")
            result.pop("engine")
        assert results[0] == results[1], path

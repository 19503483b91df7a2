from splitbrain.reports.explain import accounts, describe_call


def test_each_checker_gets_a_plain_account_and_stats_are_skipped():
    results = {"valid": "unknown", "checkers": {
        "linearizable": {"valid": "unknown", "cause": "time limit of 60 s reached on key k3"},
        "log-agreement": {"valid": True, "violations": [], "leaders": {}},
        "stats": {"calls": 10},
        "custom": {"valid": False, "cause": "3 reads went backwards"},
    }}
    got = {a.checker: (a.verdict, a.text) for a in accounts(results)}
    assert set(got) == {"linearizable", "log-agreement", "custom"}
    verdict, text = got["linearizable"]
    assert verdict == "unknown"
    assert text.startswith("No verdict: time limit of 60 s reached on key k3.")
    assert "neither proven linearizable nor shown to be wrong" in text
    assert got["log-agreement"][0] == "valid" and got["log-agreement"][1].startswith("Logs agree")
    assert got["custom"] == ("invalid", "3 reads went backwards")


def test_a_log_violation_that_is_not_a_divergence_is_told_by_its_message():
    violations = [{"kind": "two-leaders", "message": "n1 and n2 were both leader in term 4"},
                  {"kind": "lost-write", "message": "c1:3 acknowledged but never committed"}]
    results = {"checkers": {"log-agreement": {"valid": False, "violations": violations}}}
    [a] = accounts(results)
    assert a.text == "Logs disagree: n1 and n2 were both leader in term 4 (2 violations)."


def test_calls_are_described_the_way_a_person_says_them():
    assert describe_call({"process": 3, "f": "read", "key": "k1", "type": "ok", "output": 4}) == (
        "process 3's read of k1 (returned 4)")
    cas = {"process": 1, "f": "cas", "key": "k", "value": [1, 2], "type": "fail",
           "error": "cas-mismatch"}
    assert describe_call(cas) == "process 1's cas of k [1, 2] (fail: cas-mismatch)"
    assert describe_call({"process": 2, "f": "write", "value": 5, "type": "ok", "output": 5}) == (
        "process 2's write 5")
    assert accounts(None) == [] and accounts({"checkers": "broken"}) == []

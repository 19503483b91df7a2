"""Stats: counts, latency quantiles and availability per fault window."""

from __future__ import annotations

from splitbrain.checker.stats import availability, latency_quantiles, stats
from splitbrain.history import Call, Op
from splitbrain.history.faults import FaultWindow

MS = 1_000_000


def _call(i, start_ms, end_ms, type_="ok", f="read"):
    return Call(i, f, "k", None, None, type_, start_ms * MS, end_ms and end_ms * MS, i, i)


def _nemesis(t_ms, f, nodes=("n1",)):
    return Op(0, t_ms * MS, "nemesis", "info", f, {"nodes": list(nodes)})


def test_counts_and_latency_quantiles():
    calls = [_call(i, 0, i + 1) for i in range(100)] + [_call(100, 0, 5, "fail", "write"),
                                                        _call(101, 0, None, "info", "write")]
    result = stats(calls)
    assert result["valid"] is True
    assert result["by_f"]["read"] == {"ok": 100, "fail": 0, "info": 0, "latency_ms": {
        "p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 100.0, "max": 100.0}}
    assert result["by_f"]["write"]["fail"] == 1 and result["by_f"]["write"]["info"] == 1
    assert "latency_ms" not in result["by_f"]["write"]  # only ok calls measure the system


def test_availability_per_fault_window():
    calls = [_call(0, 1, 2), _call(1, 11, 12, "info"), _call(2, 12, 13), _call(3, 25, 26),
             _call(4, 31, 32, "fail"), _call(5, 45, 46)]
    nemesis = [_nemesis(10, "start-partition"), _nemesis(20, "stop-partition"),
               _nemesis(30, "kill"), _nemesis(40, "start")]
    result = stats(calls, nemesis)
    windows = result["fault_windows"]
    assert [(w["kind"], w["closed"], w["calls"], w["ok"]) for w in windows] == [
        ("partition", True, 2, 1), ("kill", True, 1, 0)]
    assert windows[0]["availability"] == 0.5
    outside = result["outside_faults"]
    assert (outside["calls"], outside["ok"], outside["availability"]) == (3, 3, 1.0)


def test_window_still_open_at_the_end_closes_with_the_history():
    result = stats([_call(0, 5, 6), _call(1, 15, 30, "info")], [_nemesis(10, "pause")])
    window = result["fault_windows"][0]
    assert window["closed"] is False and window["calls"] == 1 and window["ok"] == 0


def _call_ns(start: int, end: int, type_: str = "ok", f: str = "read") -> Call:
    """A call with times in ns (and history indexes equal to them)."""
    return Call(0, f, "k", None, None, type_, start, end, start, end)


def test_availability_counts_calls_invoked_inside_each_window():
    calls = [_call_ns(0, 5), _call_ns(10, 15, "fail"), _call_ns(12, 20, "info"),
             _call_ns(30, 31), _call_ns(40, 41)]
    windows = [FaultWindow("kill", 10, 35, ("n1",), "kill n1", True)]
    rows = availability(calls, windows, end=50)
    assert [(r.label, r.calls, r.ok) for r in rows] == [
        ("kill n1", 3, 1), ("no fault in force", 2, 2), ("whole run", 5, 3)]
    assert rows[0].fraction == 1 / 3


def test_latency_quantiles_use_ok_calls_only():
    calls = [_call_ns(0, i * 1_000_000) for i in range(1, 101)] + [_call_ns(0, 10**12, "info")]
    [row] = latency_quantiles(calls)
    assert (row.f, row.count, row.max) == ("read", 100, 100.0)
    assert row.quantiles[:3] == (50.0, 90.0, 99.0)  # nearest rank

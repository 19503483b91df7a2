"""The pytest plugin itself, run by pytester in a separate pytest: a run whose verdict is not
the expected one fails the test with the verdict, the explanation and the report path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


@pytest.mark.slow
def test_an_invalid_run_fails_the_test_with_explanation_and_report(pytester):
    pytester.makepyfile(test_chaos="""
        def test_reads_stay_linearizable(splitbrain_run):
            splitbrain_run(nemesis="partition", time_limit=3, nodes=3, seed=1,
                           unsafe=["stale-reads"], args=["--nemesis-interval", "0.5"])
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=240)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "splitbrain run: invalid (expected valid)" in out
    assert "can't read" in out and "<- cannot be linearized" in out
    report = Path(re.search(r"report: (\S+report\.html)", out).group(1))
    assert report.is_file() and "INVALID" in report.read_text()
    assert re.search(r"reproduce: splitbrain run --seed 1 .*--unsafe stale-reads", out)
    assert "Traceback" not in out  # a test failure, not an error in the plugin


def test_a_bad_expectation_is_a_clear_error(pytester):
    # the fixture comes from the installed entry point: nothing here loads the plugin
    pytester.makepyfile(test_bad="""
        def test_bad(splitbrain_run):
            splitbrain_run(expect="green")
    """)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    assert "expect must be one of valid, invalid, unknown, could not run" in result.stdout.str()

"""How a project uses splitbrain in its own test suite: the `splitbrain_run` fixture (installed
with splitbrain as a pytest plugin) runs a real cluster of the target under a fault mix and
fails the test with the verdict, the explanation and the report's path if it is not valid.

    def test_my_raft_survives_partitions_and_kills(splitbrain_run):
        splitbrain_run(nemesis="partition,kill", time_limit=30, nodes=5)

Arguments: nemesis, time_limit, nodes, seed, workload, target (where `run` takes --target),
unsafe (deliberate bugs), mode ("run"; "sim" where it exists), args (any other run options)
and expect ("valid" by default; "invalid" for a test that must catch a bug). It returns the
RunOutcome (verdict, cause, run_dir, report, command).
"""

import pytest

pytestmark = pytest.mark.slow


def test_the_bundled_raft_survives_partitions_and_kills(splitbrain_run):
    outcome = splitbrain_run(nemesis="partition,kill", time_limit=3, nodes=3, seed=2,
                             args=["--nemesis-interval", "0.5"])
    assert outcome.verdict == "valid"


"""bench/mutants.py end to end: a mutated node, a short real run, the catch and its timing.

The mutant lives in raft/server.py, which only the node processes run: the catch shows that
the nodes `splitbrain run` spawns import the mutated copy, not the checkout.
"""

from __future__ import annotations

import pytest

from tests.bench.loader import bench_module

pytestmark = pytest.mark.slow

M = bench_module("mutants")
MUTANT = "apply-ack-on-append"  # acknowledged on append: a read soon misses an acked write
SHORT = M.Configuration(
    "short", M.run_argv("--nodes", "3", "--time-limit", "5", "--nemesis", "none"), timeout=120,
    kind="run")


def test_a_mutant_is_applied_to_a_copy_and_caught_by_a_short_run(tmp_path):
    mutant = next(m for m in M.load_corpus() if m.id == MUTANT)
    tree = M.mutated_tree(mutant, tmp_path / "src")
    M.check_imports_copy(tree)
    record = M.run_one(M.Subject(mutant, mutant.args), SHORT, 1, tree, tmp_path)
    assert record["outcome"] == "caught", record
    assert (record["checker"], record["kind"]) == ("linearizable", "linearizability")
    assert 0 <= record["detect_s"] <= 5
    assert record["wall_s"] < 120

"""Every mutant of the corpus (bench/mutants/) still applies to the current source.

A refactor that moves or rewrites a mutant's snippet fails here, so the mutant gets updated
rather than silently testing nothing.
"""

from __future__ import annotations

import pytest

from tests.bench.loader import bench_module

MODULE = bench_module("mutants")
CORPUS = MODULE.load_corpus()


@pytest.mark.parametrize("mutant", CORPUS, ids=[m.id for m in CORPUS])
def test_mutant_applies_exactly_once_and_compiles(mutant):
    path = MODULE.PACKAGE / mutant.file
    source = path.read_text(encoding="utf-8")
    mutated = MODULE.mutate(mutant, source)
    assert mutated != source
    compile(mutated, f"{path} ({mutant.id})", "exec")


def test_corpus_covers_every_category_several_times():
    assert len(CORPUS) >= 25
    per_category = {c: [m for m in CORPUS if m.category == c] for c in MODULE.CATEGORIES}
    assert all(len(ms) >= 3 for ms in per_category.values()), {
        c: len(ms) for c, ms in per_category.items()}


def test_the_witness_patches_apply_to_the_current_source_and_compile(tmp_path):
    witness = bench_module("witness")
    tree = witness.instrumented(tmp_path)
    raft = tree / "splitbrain" / "raft"
    source = (raft / "raft.py").read_text(encoding="utf-8")
    assert source.count("_witness.record(") == 2
    assert source.count("_witness.record_kept_any_term(") == 1
    assert source.count("_witness.record_dropped_acks(") == 1
    for path in (raft / "raft.py", raft / "_witness.py"):
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    claimed = {m.id for m in CORPUS if m.equivalent}
    assert claimed == {"append-ack-whole-log", "commit-follower-to-last-index",  # witnessed
                       "install-keeps-log-any-term", "append-acks-replaced-entries"}

"""Every mutant of the corpus (bench/mutants/) still applies to the current source.

A refactor that moves or rewrites a mutant's snippet fails here, so the mutant gets updated
rather than silently testing nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.bench.loader import BENCH, bench_module

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


def test_the_witness_records_dropped_acknowledgements_and_none_would_commit():
    # Seed 71 of five nodes with slow fsyncs drops dozens of acknowledgements, every one to a
    # leader that could not commit with it (append-acks-replaced-entries' claim). If the seed
    # stops reaching the state after a change to the Raft or the simulator, pick another: the
    # same command with --seed S prints each seed's counts.
    witness = BENCH / "witness.py"
    argv = [sys.executable, str(witness), "--seeds", "1", "--seed", "71", "--jobs", "1",
            "--nodes", "5", "--disk-tail", "0.1,0.3", "--nemesis", "partition,net"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert (report["invalid"], report["unknown"], report["could_not_run"]) == (0, 0, 0)
    dropped = report["states"]["dropped-ack"]
    assert dropped["short"] >= 1, dropped
    assert dropped["commits"] == 0, dropped

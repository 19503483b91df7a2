"""bench/mutants.py: the corpus loader, applying a mutant to a copy, outcomes and the summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from splitbrain.config import RunConfig
from tests.bench.loader import bench_module

M = bench_module("mutants")


def entry(mid="m1", find="a = 1\n", replace="a = 2\n", file="raft/quorum.py"):
    return (f'[[mutant]]\nid = "{mid}"\ndescription = "d"\nfile = "{file}"\n'
            f"find = '''\n{find}'''\nreplace = '''\n{replace}'''\n")


def corpus(tmp_path, **files):
    for category in M.CATEGORIES:
        (tmp_path / f"{category}.toml").write_text(files.get(category, ""))
    return tmp_path


def test_corpus_entries_keep_exact_snippets(tmp_path):
    d = corpus(tmp_path, reads=entry(find="    if x:\n        y()\n"))
    (mutant,) = M.load_corpus(d)
    assert (mutant.id, mutant.category, mutant.find) == ("m1", "reads", "    if x:\n        y()\n")


@pytest.mark.parametrize(("files", "message"), [
    ({"reads": entry() + entry()}, "id 'm1' is already used in"),
    ({"reads": entry(), "apply": entry()}, "id 'm1' is already used in"),
    ({"commit": '[[mutant]]\nid = "x"\ndescription = "d"\nfile = "f"\nfind = "a"\n'},
     "commit.toml: mutant 1: field 'replace' must be a non-empty string"),
    ({"commit": entry(replace="a = 1\n")}, "replace equals find"),
    ({"elections": "[[mutant]\n"}, "elections.toml"),
    ({"reads": entry() + 'args = "--x"\n'}, "field 'args' must be a list of strings"),
    ({"reads": entry() + 'equivalent = " "\n'}, "field 'equivalent' must be a non-empty"),
])
def test_a_bad_corpus_entry_is_named(tmp_path, files, message):
    with pytest.raises(M.CorpusError, match=message.replace("(", r"\(")):
        M.load_corpus(corpus(tmp_path, **files))


def test_mutants_with_arguments_get_a_control_run_with_the_same_arguments(tmp_path):
    lease = entry("m2") + 'args = ["--node-arg=--read-mode=lease"]\n'
    plain, leased = M.load_corpus(corpus(tmp_path, reads=entry() + lease))
    assert (plain.args, leased.args) == ((), ("--node-arg=--read-mode=lease",))
    rows = M.subjects([plain, leased], control=True)
    assert [r.name for r in rows] == ["control", "control --node-arg=--read-mode=lease", "m1",
                                      "m2"]  # fmt: skip
    assert rows[1].args == rows[3].args == leased.args
    assert [r.name for r in M.subjects([leased], control=False)] == ["m2"]


def test_an_unknown_category_file_is_refused(tmp_path):
    (corpus(tmp_path) / "leases.toml").write_text(entry())
    with pytest.raises(M.CorpusError, match=r"unknown category file.*leases"):
        M.load_corpus(tmp_path)


def test_a_snippet_must_occur_exactly_once():
    mutant = M.Mutant("m", "reads", "d", "f.py", "x = 1\n", "x = 2\n")
    assert M.mutate(mutant, "y = 0\nx = 1\n") == "y = 0\nx = 2\n"
    for source, count in [("y = 0\n", 0), ("x = 1\nx = 1\n", 2)]:
        with pytest.raises(M.CorpusError, match=f"occurs {count} times"):
            M.mutate(mutant, source)


def test_the_copy_differs_from_the_source_only_where_the_mutant_says(tmp_path):
    mutant = next(m for m in M.load_corpus() if m.id == "commit-quorum-half")
    tree = M.mutated_tree(mutant, tmp_path / "mutant")
    control = M.mutated_tree(None, tmp_path / "control")
    changed = [p.relative_to(tree) for p in tree.rglob("*.py")
               if p.read_bytes() != (control / p.relative_to(tree)).read_bytes()]
    assert changed == [M.Path("splitbrain/raft/quorum.py")]
    assert (control / "splitbrain/raft/quorum.py").read_bytes() == (
        M.PACKAGE / "raft/quorum.py").read_bytes()
    M.check_imports_copy(tree)  # a child process (as every node is) imports the mutated copy


def test_outcomes_only_exit_1_is_a_catch():
    assert [M.outcome(c) for c in (0, 1, 2, 3, 64, None, -9)] == [
        "valid", "caught", "unknown", "could-not-run", "usage", "timeout", "exit--9"]


def test_a_missing_command_makes_its_configuration_unavailable():
    missing = M.Configuration("x", lambda seed, out: ["no-such-command"], 1, "run")
    assert "not available" in M.unavailable(missing)
    assert M.unavailable(M.CONFIGURATIONS["default"]) is None


def record(mutant, config, caught, detect_s=None, outcome=None, kind=None):
    return {"mutant": mutant, "category": None if mutant == "control" else "reads",
            "config": config, "caught": caught, "detect_s": detect_s, "kind": kind,
            "outcome": outcome or ("caught" if caught else "valid")}


def test_summary_counts_mutants_runs_escapes_and_false_alarms():
    records = [
        record("control", "all", False), record("control", "all", True),
        record("a", "all", True, 3.0), record("a", "all", False),
        record("b", "all", True, 5.0), record("c", "all", False, outcome="timeout"),
        record("a", "default", False),
    ]
    s = M.summarize(records, ["all", "default"])
    assert s["all"] == {
        "mutants": 3, "mutants_caught": 2, "mutant_rate": 0.667, "runs": 4, "runs_caught": 2,
        "detect_s_median": 4.0, "escaped": ["c"], "control_runs": 2, "false_alarms": 1,
        "harness_failures": 1,
    }
    assert s["default"]["mutants_caught"] == 0 and s["default"]["escaped"] == ["a"]
    table = M.table(records, ["all", "default", "sim"], ["control", "a", "b", "c"],
                    s, {"sim": "not available: no sim"})
    assert "INVALID MEASUREMENT" in table and "sim: not available: no sim" in table
    assert "all: 2/3 mutants caught (2/4 runs), median detection 4.0 s" in table


def test_summary_gives_the_sizes_shrinking_reached():
    a, b, c = (record(m, "sim", True, 1.0) for m in "abc")
    a["shrunk"] = {"ops": [200, 4], "faults": [24, 3]}
    b["shrunk"] = {"ops": [300, 300], "faults": [30, 30]}  # nothing smaller failed the same way
    c["shrunk"] = {"outcome": "timeout"}  # the shrink never printed a size: not counted
    s = M.summarize([a, b, c], ["sim"])
    assert s["sim"]["shrunk"] == {"failures": 2, "ops_median": [250, 152], "faults_median":
                                  [27, 16.5], "smaller": 1}
    assert "shrinking made 1 of 2 failures smaller; median 250 -> 152 ops, 27 -> 16.5 faults" in (
        M.table([a, b, c], ["sim"], ["a", "b", "c"], s, {}))


def test_an_equivalent_mutant_counts_nowhere_and_is_listed_with_its_reason(tmp_path):
    real, same = M.load_corpus(corpus(tmp_path, reads=entry() + entry("m2")
                                      + 'equivalent = "the runtime never lets it show"\n'))
    assert (real.equivalent, same.equivalent) == (None, "the runtime never lets it show")
    records = [record("a", "sim", True, 2.0), record("m2", "sim", False)]
    s = M.summarize(records, ["sim"], ["m2"])["sim"]
    assert (s["mutants"], s["mutants_caught"], s["escaped"]) == (1, 1, [])
    table = M.table(records, ["sim"], ["a", "m2"], {"sim": s}, {}, [same])
    assert "equivalent, not counted (1): m2" in table


def test_cells():
    assert M.cell([]) == "-"
    assert M.cell([record("a", "all", True, 2.5, kind="two-leaders")]) == "caught 2.5s two-leaders"
    assert M.cell([record("a", "all", False, outcome="unknown")]) == "unknown"
    two = [record("a", "all", True, 1.0, kind="lost-write"), record("a", "all", True, 3.0),
           record("a", "all", False)]
    assert M.cell(two) == "2/3 2.0s lost-write"
    sim = {**record("a", "sim", True, 0.8), "seeds_run": 500, "seeds_failed": 31}
    assert M.cell([sim]) == "caught 31/500 seeds 0.8s"


def test_sim_seeds_runs_exactly_that_many_seeds_with_no_budget_or_early_stop():
    assert M.sim_configuration(500).argv(7, Path("out")) == [
        "sim", "--seeds", "500", "--seed", "7", "--out", "out"]
    explore = M.sim_configuration().argv(7, Path("out"))
    assert "--stop-on-failure" in explore and "--time-budget" in explore
    assert M.CONFIGURATIONS["sim"].argv(7, Path("out")) == explore


def test_sim_all_pins_the_schedule_of_a_real_all_run():
    argv = M.sim_all(16).argv(7, Path("out"))
    assert argv[:5] == ["sim", "--seeds", "16", "--seed", "7"]
    pinned = dict(zip(argv[5:-2:2], argv[6:-2:2], strict=True))
    assert pinned == {"--nodes": str(RunConfig().nodes), "--nemesis": "all",
                      "--nemesis-interval": f"{RunConfig().nemesis_interval:g}",
                      "--time-limit": f"{M.SIM_ALL_TIME:g}"}
    assert M.CONFIGURATIONS["sim-all"].name == "sim-all"
    assert "--stop-on-failure" in M.CONFIGURATIONS["sim-all"].argv(7, Path("out"))


def test_sim_args_reach_every_seed_of_both_sim_configurations():
    timeouts = ["--timeouts=1,0"]
    assert M.sim_configuration(500, pinned=timeouts).argv(7, Path("out")) == [
        "sim", "--seeds", "500", "--seed", "7", "--timeouts=1,0", "--out", "out"]
    argv = M.sim_all(16, timeouts).argv(7, Path("out"))
    assert argv[-3:] == ["--timeouts=1,0", "--out", "out"] and "--nemesis" in argv


def test_run_args_come_after_those_of_both_run_configurations():
    plain = M.run_configurations()
    assert plain["all"].argv(7, Path("out")) == M.CONFIGURATIONS["all"].argv(7, Path("out"))
    clocked = M.run_configurations(["--nemesis=all,clock"])
    assert clocked["all"].argv(7, Path("out")) == [
        "run", "--nemesis", "all", "--time-limit", "60", "--nemesis=all,clock",
        "--seed", "7", "--out", "out"]
    assert clocked["default"].argv(7, Path("out"))[:2] == ["run", "--nemesis=all,clock"]

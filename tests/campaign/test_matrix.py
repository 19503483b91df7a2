"""The matrix: TOML and flags expand to one run per seed and combination; modes and targets are
just more axes; bad input names the file, the key and the problem."""

from __future__ import annotations

import pytest

from splitbrain.campaign.matrix import Matrix, MatrixError, from_toml, parse_seeds, with_overrides


def test_seeds_times_axes_with_stable_labels_and_unique_ids(tmp_path):
    path = tmp_path / "nightly.toml"
    path.write_text('seeds = "3-4"\ntime-limit = 5\n[matrix]\nnemesis = ["partition", '
                    '"kill,pause"]\nworkload = ["register", "kv"]\nunsafe = ["", '
                    '["stale-reads", "no-log-check"]]\n[args]\nnodes = 3\n')
    specs = from_toml(path).expand()
    assert len(specs) == 2 * 2 * 2 * 2
    assert len({s.id for s in specs}) == len(specs)
    first = specs[0]
    assert first.configuration == "nemesis=partition workload=register unsafe=none"
    assert first.argv("OUT", "run") == [
        "run", "--seed", "3", "--nemesis", "partition", "--workload", "register",
        "--time-limit", "5", "--nodes", "3", "--out", "OUT", "--name", "run"]
    both = specs[-1]
    assert both.configuration.endswith("unsafe=stale-reads+no-log-check")
    assert both.args.count("--unsafe") == 2
    assert both.command().startswith("splitbrain run --seed 4 --nemesis kill,pause")


def test_mode_and_target_are_axes_like_any_other():
    matrix = with_overrides(Matrix(), seeds="1", modes=["run", "sim"],
                            axes=[("target", ["raft", "etcd"])])
    specs = matrix.expand()
    assert [(s.mode, s.configuration) for s in specs] == [
        ("run", "mode=run target=raft"), ("run", "mode=run target=etcd"),
        ("sim", "mode=sim target=raft"), ("sim", "mode=sim target=etcd")]
    assert specs[2].argv("O", "n")[:2] == ["sim", "--seed"]
    assert "--target" in specs[3].args


@pytest.mark.parametrize(("text", "seeds"), [
    ("3", (1, 2, 3)), ("5-7", (5, 6, 7)), ("4,1,4", (4, 1)), (2, (1, 2)), ([9, 8], (9, 8))])
def test_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(("toml", "message"), [
    ("seeds = \n", "nightly.toml: Invalid value (at line 1, column 9)"),
    ("sedes = 3\n", "unknown key 'sedes'"),
    ("[matrix]\nnemesis = []\n", "axis 'nemesis' has no values"),
    ("[matrix]\nseed = [1]\n", "the campaign sets --seed itself"),
    ("[matrix]\nnemesis = [{a = 1}]\n", "axis 'nemesis': {'a': 1} is not a string"),
    ("time-limit = -1\n", "time-limit: expected a positive number"),
    ("seeds = \"x\"\n", "seeds: not a count, a range A-B or a list"),
])
def test_bad_toml_names_file_key_and_problem(tmp_path, toml, message):
    path = tmp_path / "nightly.toml"
    path.write_text(toml)
    with pytest.raises(MatrixError, match=message.replace("(", r"\(").replace(")", r"\)")):
        from_toml(path)


def test_a_single_mode_other_than_run_is_in_the_label():
    (spec,) = with_overrides(Matrix(), modes=["sim"]).expand()
    assert spec.mode == "sim" and spec.configuration == "mode=sim"
    (spec,) = Matrix().expand()
    assert spec.configuration == "default" and spec.argv("O", "n")[0] == "run"

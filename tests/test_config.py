"""A run's configuration reproduces itself: the recorded command parses back to the same config."""

from __future__ import annotations

import shlex

import pytest

from splitbrain.cli import build_parser
from splitbrain.config import UNSAFE_FLAGS, RunConfig
from splitbrain.run import config_from_args


def parse_run(argv: list[str]) -> RunConfig:
    args = build_parser(argv).parse_args(argv)
    return config_from_args(args)


def test_command_round_trips_every_option():
    config = RunConfig(nodes=3, time_limit=12.5, concurrency=7, rate=40, workload="kv",
                       reads=0.85, nemesis=("partition", "kill"), nemesis_interval=2, seed=99,
                       name="nightly", unsafe=("stale-reads",), op_timeout=0.5,
                       check_time_limit=7, node_args=("--election-tick=30", "--tick-ms", "5"))
    argv = shlex.split(config.command())[1:]
    assert parse_run(argv) == config


def test_run_offers_exactly_the_unsafe_flags_the_nodes_accept():
    from splitbrain.raft.server import UNSAFE_FLAGS as NODE_FLAGS

    assert set(UNSAFE_FLAGS) == NODE_FLAGS


def test_seed_is_chosen_once_and_recorded():
    config = parse_run(["run"])
    assert f"--seed {config.seed}" in config.command()
    assert config.concurrency == 2 * config.nodes


@pytest.mark.parametrize("argv", [
    ["run", "--nodes", "many"],
    ["run", "--workload", "nope"],
    ["run", "--unsafe", "fast-and-loose"],
    ["run", "--rate", "-1"],
])
def test_bad_options_exit_64(argv):
    with pytest.raises(SystemExit) as exc:
        parse_run(argv)
    assert exc.value.code == 64


def test_command_round_trips_the_target_its_arguments_and_the_network():
    from tests.targets.test_tomlfile import KVD

    config = RunConfig(nodes=3, nemesis=("partition", "kill"), seed=5, target=str(KVD),
                       target_args=(("reads", "local"),), network="netns")
    argv = shlex.split(config.command())[1:]
    assert parse_run(argv) == config
    assert parse_run(["run", "--target", "etcd"]).network == "netns"  # the target's default
    assert "--target" not in RunConfig().command()  # the default target says nothing


@pytest.mark.parametrize("argv, problem", [
    (["run", "--name", "../../x"], "must be one path component"),
    (["run", "--name", "a/b"], "must be one path component"),
    (["run", "--name", ".."], "must be one path component"),
    (["run", "--name", "latest"], "is reserved in the runs directory"),
    (["run", "--name", "tab\there"], "must be printable"),
    (["run", "--nemesis-interval", "nan"], "must be a finite number, not nan"),
    (["run", "--time-limit", "inf"], "must be a finite number, not inf"),
    (["run", "--check-time-limit=-inf"], "must be a finite number, not -inf"),
    (["run", "--op-timeout", "0"], "must be more than 0: 0"),
    (["run", "--reads", "1.5"], "must be from 0 to 1: 1.5"),
    (["run", "--reads", "nan"], "must be a finite number, not nan"),
])
def test_options_that_would_escape_or_never_end_exit_64_before_anything_starts(
        argv, problem, tmp_path, capsys):
    """Issue 10 item 9: `--name ../../x` wrote outside --out, `--nemesis-interval nan` created a
    run directory and exited 3, `--time-limit inf` ran forever, `--op-timeout 0` was valid."""
    from splitbrain.cli import main

    out = tmp_path / "runs"
    try:
        code = main([*argv, "--out", str(out)])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 64
    assert problem in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_the_nemesis_interval_is_the_target_s_unless_given(tmp_path):
    """Each target says how often its faults change (about its election time): the bundled
    Raft elects in 150-300 ms, etcd in over a second."""
    from tests.targets.test_tomlfile import GOOD, write

    assert parse_run(["run"]).nemesis_interval == RunConfig().nemesis_interval == 0.5
    assert parse_run(["run", "--target", "etcd"]).nemesis_interval == 3.0
    own = write(tmp_path, "nemesis_interval = 1.5\n" + GOOD)
    assert parse_run(["run", "--target", own]).nemesis_interval == 1.5
    given = parse_run(["run", "--target", own, "--nemesis-interval", "4"])
    assert given.nemesis_interval == 4.0 and "--nemesis-interval 4" in given.command()


def test_a_name_of_one_component_is_a_name():
    assert parse_run(["run", "--name", "javascript:alert(9)"]).name == "javascript:alert(9)"

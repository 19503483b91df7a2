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


def test_a_swarm_run_draws_the_nodes_knobs_from_its_seed_and_its_command_replays_them():
    """`--nemesis all` draws message sizes and the snapshot interval per seed, as the
    simulator's swarm does; the recorded command names what was drawn, so it replays."""
    configs = [parse_run(["run", "--nemesis", "all", "--seed", str(s)]) for s in range(1, 41)]
    drawn = {arg.partition("=")[0] for c in configs for arg in c.node_args}
    assert drawn == {"--snapshot-every", "--max-msg-entries", "--snapshot-chunk"}
    assert sum(not c.node_args for c in configs) < 10  # most seeds draw some
    for config in configs:
        assert parse_run(shlex.split(config.command())[1:]) == config
    again = parse_run(["run", "--nemesis", "all", "--seed", "1"])
    assert again.node_args == configs[0].node_args  # the seed names them


def test_knobs_the_user_names_are_kept_and_others_still_drawn_as_before():
    plain = [parse_run(["run", "--nemesis", "all", "--seed", str(s)]) for s in range(1, 41)]
    named = [parse_run(["run", "--nemesis", "all", "--seed", str(s),
                        "--node-arg=--max-msg-entries=7"]) for s in range(1, 41)]  # fmt: skip
    for p, n in zip(plain, named, strict=True):
        assert n.node_args[0] == "--max-msg-entries=7"
        assert n.node_args[1:] == tuple(a for a in p.node_args if "max-msg" not in a)


@pytest.mark.parametrize("argv", [
    ["run"],  # the default nemesis: three kinds, not a swarm
    ["run", "--nemesis", "partition,kill,pause"],
    ["run", "--nemesis", "all", "--knobs", "default"],
    ["run", "--nemesis", "all", "--target", "etcd"],  # a target without knobs
])  # fmt: skip
def test_no_knobs_are_drawn_outside_a_swarm_or_with_knobs_default(argv):
    for seed in range(1, 21):
        config = parse_run([*argv, "--seed", str(seed)])
        assert config.node_args == ()
        assert parse_run(shlex.split(config.command())[1:]) == config

"""Sim configurations: drawn per seed (swarm), pinned where asked, round-tripped through JSON."""

from __future__ import annotations

import argparse
import random
import shlex
from dataclasses import replace

import pytest

from splitbrain.config import RunConfig
from splitbrain.nemesis.schedule import parse_faults, plan_schedule
from splitbrain.raft.messages import HardState
from splitbrain.raft.raft import Config, Raft
from splitbrain.sim.command import add_arguments, settings
from splitbrain.sim.config import ConfigError, SimConfig
from splitbrain.sim.swarm import SETTINGS, draw
from splitbrain.sim.world import Physics, TimerEdges, World, node_random
from splitbrain.targets.knobs import node_option
from splitbrain.targets.raft import node_args_problem


def test_a_seed_names_one_configuration_and_seeds_differ():
    base = RunConfig(unsafe=("stale-reads",))
    configs = [draw(seed, {}, base) for seed in range(40)]
    assert draw(7, {}, base) == configs[7]
    assert len({(c.run.nodes, c.run.nemesis, c.run.time_limit) for c in configs}) > 20
    for c in configs:
        assert c.swarm == SETTINGS and c.run.unsafe == ("stale-reads",)
        assert c.run.nemesis and parse_faults(",".join(c.run.nemesis), c.run.nodes)
        assert c.run.nodes in (1, 3, 5) and 1 <= c.run.concurrency <= 2 * c.run.nodes
    assert {c.run.nodes for c in configs} == {1, 3, 5}


def test_a_single_node_draws_only_faults_that_act_on_nodes():
    drawn = {f.partition(":")[0] for seed in range(200)
             for f in draw(seed, {"nodes": 1}, RunConfig()).run.nemesis}  # fmt: skip
    assert drawn and not drawn & {"partition", "net", "churn"}
    assert {"kill", "power-loss", "crash"} <= drawn


@pytest.mark.parametrize("lease", [["--read-mode=lease"], ["--read-mode", "lease"]])
def test_the_swarm_draws_clock_faults_and_only_drift_for_nodes_that_read_from_leases(lease):
    def clocks(node_args):
        return [f for seed in range(100)
                for f in draw(seed, {}, RunConfig(node_args=node_args)).run.nemesis
                if f.startswith("clock")]  # fmt: skip
    assert len(set(clocks(("--read-mode=index",)))) > 3  # clock, and narrowed to variants
    # A lease rests on a bound on clock drift: slow and fast clocks break it by design.
    leased = clocks(tuple(lease))
    assert len(leased) > 5 and set(leased) == {"clock:drift"}


def test_pinned_settings_are_kept_and_do_not_shift_the_others():
    base = RunConfig()
    free = draw(3, {}, base)
    pinned = draw(3, {"nodes": 5, "nemesis": ("kill",), "latency": (0.001, 0.001)}, base)
    assert pinned.run.nodes == 5 and pinned.run.nemesis == ("kill",)
    assert pinned.physics.latency == (0.001, 0.001)
    assert "nodes" not in pinned.swarm and "time_limit" in pinned.swarm
    assert pinned.run.time_limit == free.run.time_limit and pinned.physics.disk == free.physics.disk


def test_config_json_round_trips_with_explicit_plans():
    run = RunConfig(nodes=3, nemesis=("partition", "net", "crash"), seed=9, name="sim",
                    unsafe=("no-log-check",))
    plans = plan_schedule(run.nemesis, run.node_names, 0.5, random.Random(1))
    config = SimConfig(run, Physics(latency=(0.001, 0.002)),
                       tuple(next(plans) for _ in range(6)), ("nodes",), {"ops": 3, "faults": 1},
                       stop_after=1234)  # fmt: skip
    back = SimConfig.from_json(config.to_json())
    assert back == config
    assert config.to_json()["mode"] == "sim"
    assert config.command() == "splitbrain sim --replay RUN_DIR"
    assert SimConfig(run).command().startswith("splitbrain sim --seed 9 --nodes 3 ")


def test_a_config_that_is_not_a_sim_runs_is_refused_with_its_field():
    with pytest.raises(ConfigError, match="mode"):
        SimConfig.from_json(RunConfig().to_json())
    data = SimConfig(RunConfig()).to_json()
    del data["time_limit"]
    with pytest.raises(ConfigError, match="time_limit"):
        SimConfig.from_json(data)


def test_a_config_written_before_the_share_of_reads_existed_replays_with_the_old_mix():
    data = SimConfig(RunConfig(reads=0.85)).to_json()
    del data["reads"]
    assert SimConfig.from_json(data).run.reads == 0.4


def test_the_swarm_draws_the_share_of_reads_after_older_settings_and_keeps_a_pinned_one():
    configs = [draw(seed, {}, RunConfig()) for seed in range(100)]
    shares = [c.run.reads for c in configs]
    assert set(shares) == {0.4, 0.85} and 30 < shares.count(0.85) < 70
    pinned = [draw(seed, {"reads": 0.1}, RunConfig()) for seed in range(100)]
    assert {c.run.reads for c in pinned} == {0.1}
    # Drawn after the settings that existed before it: seeds drawn then keep their other draws.
    assert [replace(c.run, reads=0.1) for c in configs] == [c.run for c in pinned]
    assert "--reads 0.1" in pinned[0].command()
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    again, _ = settings(parser.parse_args(shlex.split(pinned[0].command())[2:]))
    assert draw(0, again, RunConfig()).run == pinned[0].run


def test_delays_have_a_seeded_heavy_tail_that_the_command_names():
    world = World(1, Physics(disk=(0.001, 0.002), disk_tail=(0.1, 0.5)))
    try:
        draws = [world.loop.executor_delay() for _ in range(2000)]
    finally:
        world.loop.close()
    assert all(0.001 <= d <= 0.5 for d in draws)
    slow = [d for d in draws if d > 0.002]
    assert 100 < len(slow) < 300 and max(slow) > 0.1  # about one in ten, up to the longest
    config = draw(1, {"latency_tail": (0.01, 0.3), "disk_tail": (0.0, 0.0)}, RunConfig())
    assert config.physics.latency_tail == (0.01, 0.3)
    assert "--latency-tail 0.01,0.3 --disk-tail 0,0" in config.command()
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    pinned, _ = settings(parser.parse_args(shlex.split(config.command())[2:]))
    assert draw(1, pinned, RunConfig()).physics == config.physics


@pytest.mark.parametrize("edges, expect", [((1.0, 0.0), {15}), ((0.0, 1.0), {29}),
                                           ((0.5, 0.5), {15, 29})])  # fmt: skip
def test_timer_edges_put_a_node_s_election_timeouts_at_the_ends_of_their_range(edges, expect):
    core = Raft(Config("n1", ("n1", "n2", "n3"), election_tick=15), HardState(), [],
                TimerEdges("1:n1:1", edges))  # fmt: skip
    drawn = set()
    for term in range(1, 200):
        core.become_follower(term, None)  # draws a new randomized timeout
        drawn.add(core.randomized_timeout)
    assert drawn == expect


def test_timer_edges_leave_the_rest_of_the_draws_uniform_and_none_leaves_the_old_stream():
    rng = TimerEdges("7", (0.5, 0.0))
    draws = [rng.randrange(15, 30) for _ in range(3000)]
    assert 1300 < draws.count(15) < 1700 and set(draws) == set(range(15, 30))
    # No edges: exactly the draws a seed made before timer edges existed, so it replays.
    plain = node_random("7", (0.0, 0.0))
    assert type(plain) is random.Random
    before = random.Random("7")
    assert [plain.random() for _ in range(5)] == [before.random() for _ in range(5)]


def test_the_swarm_draws_timer_edges_last_and_old_configs_replay_with_uniform_timeouts():
    configs = [draw(seed, {}, RunConfig()) for seed in range(300)]
    edges = [c.physics.timeouts for c in configs]
    assert set(edges) == {(0.0, 0.0), (1.0, 0.0)} and 70 < edges.count((1.0, 0.0)) < 130
    pinned = [draw(seed, {"timeouts": (1.0, 0.0)}, RunConfig()) for seed in range(300)]
    assert [replace(c.physics, timeouts=(1.0, 0.0)) for c in configs] == [c.physics for c in pinned]
    assert [c.run for c in configs] == [c.run for c in pinned]
    assert "--timeouts 1,0" in pinned[0].command()
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    again, _ = settings(parser.parse_args(shlex.split(pinned[0].command())[2:]))
    assert draw(0, again, RunConfig()).physics == pinned[0].physics
    # config.json written before timer edges existed: uniform timeouts, as they ran.
    data = configs[0].to_json()
    del data["physics"]["timeouts"]
    assert SimConfig.from_json(data).physics.timeouts == (0.0, 0.0)


def test_settings_are_drawn_in_the_order_they_were_added():
    """A setting added later is drawn after the older ones: a seed keeps its older draws."""
    assert SETTINGS[SETTINGS.index("snapshot_every"):] == (
        "snapshot_every", "reads", "timeouts", "batch", "chunk")


def test_the_swarm_draws_message_sizes_into_the_node_arguments_unless_they_name_them():
    configs = [draw(seed, {}, RunConfig()) for seed in range(200)]

    def drawn(option):
        return [node_option(c.run.node_args, option) for c in configs]

    entries, chunks = drawn("--max-msg-entries"), drawn("--snapshot-chunk")
    assert set(entries) == {None, "1", "4"} and 70 < entries.count(None) < 130
    assert set(chunks) == {None, "256", "4096"} and 70 < chunks.count(None) < 130
    assert all(node_args_problem(c.run.node_args) is None for c in configs)  # all acceptable
    # Drawn after the older settings: without them, a seed is what it was.
    older = [draw(seed, {"batch": 0, "chunk": 0}, RunConfig()) for seed in range(200)]
    for config, before in zip(configs, older, strict=True):
        kept = tuple(a for a in config.run.node_args
                     if not a.startswith(("--max-msg-entries", "--snapshot-chunk")))  # fmt: skip
        assert replace(config.run, node_args=kept) == before.run
        assert config.physics == before.physics
    # Named by the caller: kept, not drawn; the command reproduces the seed.
    named = draw(5, {}, RunConfig(node_args=("--max-msg-entries", "7")))
    assert node_option(named.run.node_args, "--max-msg-entries") == "7"
    assert "batch" not in named.swarm and "chunk" in named.swarm
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    pinned, base = settings(parser.parse_args(shlex.split(configs[0].command())[2:]))
    assert draw(0, pinned, base).run == replace(configs[0].run, name=base.name)

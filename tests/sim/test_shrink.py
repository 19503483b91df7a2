"""Shrinking: explicit fault plans replay the seed's own, and every candidate is smaller."""

from __future__ import annotations

from dataclasses import replace

from splitbrain.config import RunConfig
from splitbrain.sim.command import first_difference
from splitbrain.sim.config import SimConfig
from splitbrain.sim.shrink import candidates, seeded_plans
from splitbrain.sim.simulate import simulate
from splitbrain.store import RunDir

RUN = RunConfig(nodes=3, time_limit=1.5, concurrency=4, rate=60, seed=21, name="sim",
                nemesis=("partition", "kill", "pause", "net", "churn", "crash"),
                nemesis_interval=0.2)  # fmt: skip


def run_dir(path) -> RunDir:
    (path / "nodes").mkdir(parents=True)
    return RunDir(path)


def test_the_seeds_faults_made_explicit_replay_the_same_run(tmp_path):
    config = SimConfig(RUN)
    explicit = replace(config, plans=seeded_plans(config))
    assert len(explicit.plans) > 3 and all(p.start < RUN.time_limit for p in explicit.plans)
    a, b = run_dir(tmp_path / "a"), run_dir(tmp_path / "b")
    simulate(config, a)
    simulate(explicit, b)
    assert first_difference(a, b) is None


def test_every_candidate_is_smaller_in_one_way():
    config = replace(SimConfig(RUN), plans=seeded_plans(SimConfig(RUN)))
    seen = []
    for what, smaller in candidates(config):
        r, p = smaller.run, smaller.plans
        seen.append(what.split()[0])
        assert (r.time_limit < RUN.time_limit or r.concurrency < RUN.concurrency
                or r.rate < RUN.rate or len(p) < len(config.plans)
                or sum(x.stop - x.start for x in p) < sum(x.stop - x.start for x in config.plans)
                ), what  # fmt: skip
        assert all(plan.start < r.time_limit for plan in p)
    assert {"time", "without", "fault", "rate"} <= set(seen) and any(s.isdigit() for s in seen)

"""The search with its reductions gives exactly the brute-force checker's verdict, in both
engines: the compiled one (_core: the native compile and steps of every built-in model,
register, cas-register and kv) and the pure-Python one, which must also agree with each other
on the failure they report (prefix, states, the call to blame, its concurrent calls).

Each property covers 10,000 random small histories: hypothesis draws 1,000 seeds and each seed
makes a batch of 10 (drawing every random choice through hypothesis costs 50 times more; a
failure names its seed). `derandomize` keeps CI reproducible. The reductions are checked all
together, each alone and each left out, so one unsound rule cannot hide behind another
(the first draft of "greedy-stutter" was sound alone and wrong next to "model").
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splitbrain.checker.linearizable import check
from splitbrain.checker.models import CAS_REGISTER, KV, REGISTER
from splitbrain.checker.search import ENGINES, REDUCTIONS

from .bruteforce import brute_force
from .histories import random_history

BATCH = 10
SEEDS = settings(max_examples=1_000, deadline=None, derandomize=True, database=None,
                 suppress_health_check=list(HealthCheck))
seeds = st.integers(min_value=0, max_value=2**64 - 1)


def _agree(seed: int, model, initial, reductions=REDUCTIONS) -> None:
    rng = random.Random(seed)
    for _ in range(BATCH):
        calls = random_history(rng, model, initial, max_calls=8)
        fail_means_no_effect = rng.random() < 0.3
        expected = brute_force(calls, model, initial, fail_means_no_effect=fail_means_no_effect)
        results = [check(calls, model, initial=initial, fail_means_no_effect=fail_means_no_effect,
                         reductions=reductions, engine=engine) for engine in ENGINES]
        for got in results:
            assert got["valid"] is expected, (seed, fail_means_no_effect, calls, got)
            assert got.get("failure") == results[0].get("failure"), (seed, calls)


@SEEDS
@given(seeds, st.sampled_from([REGISTER, CAS_REGISTER]), st.sampled_from([None, 0]))
def test_registers_match_brute_force(seed, model, initial):
    """register and cas-register share their steps and their native compile, so they share
    the 10,000 histories (register's without cas)."""
    _agree(seed, model, initial)


@SEEDS
@given(seeds, st.sampled_from(["", "a"]))
def test_kv_matches_brute_force(seed, initial):
    _agree(seed, KV, initial)


# Every reduction alone, every reduction left out, and none at all.
SUBSETS = ([frozenset({r}) for r in sorted(REDUCTIONS)]
           + [REDUCTIONS - {r} for r in sorted(REDUCTIONS)] + [frozenset()])


@SEEDS
@given(seeds, st.sampled_from(SUBSETS),
       st.sampled_from([(REGISTER, None), (CAS_REGISTER, None), (CAS_REGISTER, 0), (KV, ""),
                        (KV, "a")]))
def test_each_reduction_alone_and_left_out_matches_brute_force(seed, reductions, model_initial):
    """10,000 histories over (subset, model) pairs: about 670 per subset."""
    model, initial = model_initial
    _agree(seed, model, initial, reductions)


def test_generator_covers_both_verdicts_and_placements():
    """The random histories exercise what they are meant to (guards the tests above)."""
    from splitbrain.checker.search import compile_problem

    rng = random.Random(7)
    verdicts = set()
    placed = 0
    for _ in range(300):
        calls = random_history(rng, KV, "", max_calls=8)
        verdicts.add(brute_force(calls, KV, ""))
        placed += any(s is not None for s in compile_problem("k", calls, KV, "").placement)
    assert verdicts == {True, False}
    assert placed > 20

"""The register workload: independent keys, each a register read, written and compare-and-set.

Values come from a small domain (0–4) so that a good share of compare-and-sets succeed, which is
what exposes lost or reordered writes. Checked with the cas-register model, initial value absent.
"""

from __future__ import annotations

import random

from splitbrain.workloads.generator import READS, Invocation, KeyRotation

VALUES = 5  # value domain 0..VALUES-1
ROTATION = KeyRotation(prefix="r")


def next_op(rng: random.Random, process: int, n: int, heal_age: float | None = None,
            reads: float = READS) -> Invocation:  # fmt: skip
    """The n-th operation of the run (n counts every operation issued so far; heal_age: seconds
    since a fault healed, see generator.KeyRotation): a read with chance `reads`, the rest
    split evenly between writes and compare-and-sets."""
    key = ROTATION.key(rng, n, heal_age)
    roll = rng.random()
    if roll < reads:
        return Invocation("read", key, None)
    if roll < (1 + reads) / 2:
        return Invocation("write", key, rng.randrange(VALUES))
    return Invocation("cas", key, [rng.randrange(VALUES), rng.randrange(VALUES)])


def final_read(key: str) -> Invocation:
    return Invocation("read", key, None)

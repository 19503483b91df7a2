"""The kv workload: get / put / append on independent string keys, with unique append tokens.

Every value written is a token unique to the run (`<process>.<n>;`), so a read shows exactly
which writes it saw and in what order; the checker's unique-token reduction uses this to decide
histories that a plain search cannot. Checked with the kv model (initial value "").
"""

from __future__ import annotations

import random

from splitbrain.workloads.generator import READS, Invocation, KeyRotation

ROTATION = KeyRotation(prefix="s")


def token(process: int, n: int) -> str:
    return f"{process}.{n};"


def next_op(rng: random.Random, process: int, n: int, heal_age: float | None = None,
            reads: float = READS) -> Invocation:  # fmt: skip
    """As register.next_op: a get with chance `reads`; of the rest, five appends to a put."""
    key = ROTATION.key(rng, n, heal_age)
    roll = rng.random()
    if roll < reads:
        return Invocation("get", key, None)
    if roll < 1 - (1 - reads) / 6:
        return Invocation("append", key, token(process, n))
    return Invocation("put", key, token(process, n))


def final_read(key: str) -> Invocation:
    return Invocation("get", key, None)

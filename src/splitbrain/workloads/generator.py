"""What a workload generates: invocations, and the rotation of independent keys.

Generators are pure functions of a seeded `random.Random` and a counter, so the sequence of
operations a worker issues depends only on the seed. Keys rotate: at any moment a small window of
keys is active and the window slides as operations are issued, so each key sees a bounded number
of operations (which keeps the per-key linearizability search small) while keys still overlap in
time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Invocation:
    """One operation a process is about to invoke."""

    f: str  # read/write/cas (register) or get/put/append (kv)
    key: str | None  # the independent key it touches
    value: Any  # the input: None for reads, v for writes, [expected, new] for cas


@dataclass(frozen=True, slots=True)
class KeyRotation:
    """Picks the key of the n-th operation: `window` active keys, sliding every `ops_per_key`."""

    prefix: str = "k"
    ops_per_key: int = 60  # how many operations it takes for the window to slide by one key
    window: int = 3  # how many keys are active at once

    def key(self, rng: random.Random, n: int) -> str:
        return f"{self.prefix}{n // self.ops_per_key + rng.randrange(self.window)}"

"""What a workload generates: invocations, and the rotation of independent keys.

Generators are pure functions of a seeded `random.Random`, a counter and what the interpreter
tells them about the faults (`heal_age`: seconds since a fault last healed or a node came back),
so the sequence of operations a worker issues depends only on the seed and that. Keys rotate: at
any moment a small window of keys is active and the window slides as operations are issued, so
each key sees a bounded number of operations (which keeps the per-key linearizability search
small) while keys still overlap in time. Right after a heal the window narrows to `hot_window`
keys for `hot_for` seconds: contention concentrates where bugs live, on the key every worker
touches while a rejoining node catches up.

`reads` is the share of operations that read (READS by default; `run --reads`, drawn per seed by
the simulator's swarm). A read-heavy mix keeps clients free to read: a client waiting out a
write that cannot commit (at a leader cut off from its quorum) asks nothing else until its
timeout, so with few reads almost no read reaches a deposed leader in the moments it still
believes it leads, which is where stale reads come from.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

READS = 0.4  # share of operations that are reads, unless a run says otherwise


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
    hot_window: int = 1  # ... for `hot_for` seconds after a heal
    hot_for: float = 1.0

    def key(self, rng: random.Random, n: int, heal_age: float | None = None) -> str:
        hot = heal_age is not None and heal_age < self.hot_for
        window = self.hot_window if hot else self.window
        return f"{self.prefix}{n // self.ops_per_key + rng.randrange(window)}"

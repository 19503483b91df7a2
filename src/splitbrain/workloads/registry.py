"""The workload registry: a workload is a generator, a final read and the model to check with."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from splitbrain.workloads import kv, register
from splitbrain.workloads.generator import Invocation


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    # (rng, process, n, heal_age, reads) -> invocation; heal_age: seconds since a fault healed
    # or None; reads: the share of reads (generator.READS)
    next_op: Callable[[random.Random, int, int, float | None, float], Invocation]
    final_read: Callable[[str], Invocation]  # a read of one key, for the final phase
    model: str  # the checker model its history is checked with
    initial: Any  # the model's value of a key never written


WORKLOADS: dict[str, Workload] = {
    "register": Workload(
        "register",
        "read/write/cas on independent keys over a small value domain",
        register.next_op,
        register.final_read,
        model="cas-register",
        initial=None,
    ),
    "kv": Workload(
        "kv",
        "get/put/append on independent keys with unique append tokens",
        kv.next_op,
        kv.final_read,
        model="kv",
        initial="",
    ),
}

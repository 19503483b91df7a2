"""Large register histories for tests and benchmarks: linearizable by construction, or not.

Clients (`processes` slots) call read, write and cas on `keys` keys with values 0-4. Each call
takes effect at a hidden point between its invoke and its completion, and what it returns
follows from the key's state at that point, so the history is linearizable. A share of calls
(`info`) end indeterminate: their effect happened or not (a coin), and their process continues
under a new id (DESIGN.md). Failed compares are `fail` with `cas-mismatch`. `corrupt=N` then
makes N ok reads return a value no call ever wrote: those keys cannot be linearized. The same
arguments always give the same lines. bench/histgen.py writes them to a file.
"""

from __future__ import annotations

import json
import random
from typing import IO

VALUES = 5
NEVER_WRITTEN = 99  # what a corrupted read returns


def generate(out: IO[str], *, calls: int, keys: int, processes: int, info: float, seed: int,
             corrupt: int = 0) -> dict[str, int]:
    """Write a history of `calls` calls to `out`; returns counts by completion type."""
    rng = random.Random(seed)
    state = [None] * keys
    lines: list[list] = []  # [process, type, f, key, value] per line
    reads: list[int] = []  # lines of ok reads, for corruption
    counts = {"ok": 0, "fail": 0, "info": 0}
    # Per slot: None when idle, else [line of invoke, key, f, value, result or None, applied]
    slots: list[list | None] = [None] * processes
    process_of = list(range(processes))
    busy: list[int] = []
    started = 0
    while started < calls or busy:
        slot = rng.randrange(processes)
        current = slots[slot]
        if current is None:
            if started == calls:
                slot = rng.choice(busy)
                current = slots[slot]
            else:
                key = rng.randrange(keys)
                roll = rng.random()
                if roll < 0.5:
                    f, value = "read", None
                elif roll < 0.8:
                    f, value = "write", rng.randrange(VALUES)
                else:
                    f, value = "cas", [rng.randrange(VALUES), rng.randrange(VALUES)]
                slots[slot] = [len(lines), key, f, value, None, False,
                               rng.random() < info]
                lines.append([process_of[slot], "invoke", f, key, value])
                busy.append(slot)
                started += 1
                continue
        _, key, f, value, result, applied, indeterminate = current
        if not applied and not (indeterminate and rng.random() < 0.5):
            # the hidden linearization point
            if f == "read":
                result = ("ok", state[key])
            elif f == "write":
                state[key] = value
                result = ("ok", value)
            elif state[key] == value[0]:
                state[key] = value[1]
                result = ("ok", value)
            else:
                result = ("fail", value)
            current[4], current[5] = result, True
            if rng.random() < 0.5:
                continue  # completes later
        if indeterminate:
            outcome, shown = "info", value
        elif result is None:
            continue  # a determinate call must take effect before it completes
        else:
            outcome, shown = result
        if outcome == "ok" and f == "read":
            reads.append(len(lines))
        lines.append([process_of[slot], outcome, f, key, shown])
        counts[outcome] += 1
        slots[slot] = None
        busy.remove(slot)
        if indeterminate:
            process_of[slot] += processes
    for line in rng.sample(reads, min(corrupt, len(reads))):
        lines[line][4] = NEVER_WRITTEN
    time = 0
    for index, (process, outcome, f, key, value) in enumerate(lines):
        time += rng.randrange(1_000, 50_000)
        error = ',"error":"cas-mismatch"' if outcome == "fail" else (
            ',"error":"timeout"' if outcome == "info" else "")
        out.write(f'{{"index":{index},"time":{time},"process":{process},"type":"{outcome}",'
                  f'"f":"{f}","key":"k{key}","value":{json.dumps(value)}{error}}}\n')
    return counts

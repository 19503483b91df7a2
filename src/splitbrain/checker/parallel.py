"""Keys checked on several cores: the keys are split over forked workers, each runs the serial
round-robin on its share, and the findings merge into exactly what the serial run finds.

Why the result is the serial one: a key gets the same slices of steps whoever else runs, so
the round in which it finishes depends on the key alone. The serial run reports the invalid
key that finishes first in (round, key position) order; each worker reports the first of its
own share in that order, and the earliest of those is the serial one. The Board (shared
memory) lets a worker stop once another has found something it cannot beat. Memory limits
are split between the workers and a time limit applies to each; either can make a key
"unknown" (with its cause) where the serial run would have decided it.

Workers are forked (the histories are already in memory, nothing is pickled on the way in)
and send their result back through a pipe; a worker that dies leaves its keys to the parent,
and a worker whose parent dies is killed (the parent-death signal).
"""

from __future__ import annotations

import mmap
import os
import pickle
import struct
from collections.abc import Callable
from typing import Any

_NONE = (1 << 62, 0)


class Board:
    """Each worker's earliest finding (round, position), in memory shared across fork."""

    def __init__(self, workers: int) -> None:
        self._map = mmap.mmap(-1, 16 * workers)
        self.workers = workers
        self.slot = 0
        for w in range(workers):
            struct.pack_into("qq", self._map, 16 * w, *_NONE)

    def post(self, when: tuple[int, int]) -> None:
        struct.pack_into("qq", self._map, 16 * self.slot, *when)

    def decided_before(self, rnd: int) -> bool:
        """Some worker found an invalid key in a round before `rnd`: nothing later wins."""
        return any(struct.unpack_from("qq", self._map, 16 * w)[0] < rnd
                   for w in range(self.workers))


def split(jobs: list[tuple[Any, int]], workers: int) -> list[list[tuple[Any, int]]]:
    """Keys (each with its number of calls) spread so that each part has about as many calls;
    each part in key order."""
    parts: list[list[int]] = [[] for _ in range(workers)]
    load = [0] * workers
    for i in sorted(range(len(jobs)), key=lambda i: -jobs[i][1]):
        w = load.index(min(load))
        parts[w].append(i)
        load[w] += jobs[i][1]
    return [[jobs[i] for i in sorted(part)] for part in parts if part]


def run(jobs: list[tuple[Any, int]], workers: int,
        schedule: Callable[[list[tuple[Any, int]], Board], tuple[Any, Any]]) -> tuple[Any, Any]:
    """schedule(part, board) on each part in its own process; the merged verdict."""
    from splitbrain.cluster.lifeline import set_parent_death_signal  # ctypes: only when forking

    parts = split(jobs, workers)
    board = Board(len(parts))
    children: list[tuple[int, int, list]] = []
    for slot, part in enumerate(parts[1:], start=1):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker: compute, report, and leave without running any cleanup
            code = 0
            try:
                set_parent_death_signal()  # never outlive the check that wanted the answer
                os.close(read_fd)
                board.slot = slot
                data = pickle.dumps(schedule(part, board), pickle.HIGHEST_PROTOCOL)
                with os.fdopen(write_fd, "wb") as out:
                    out.write(data)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(write_fd)
        children.append((pid, read_fd, part))
    results = [schedule(parts[0], board)]
    for pid, read_fd, part in children:
        with os.fdopen(read_fd, "rb") as source:
            data = source.read()
        os.waitpid(pid, 0)
        results.append(pickle.loads(data) if data else schedule(part, board))
    return merge(results)


def merge(results: list[tuple[Any, Any]]) -> tuple[Any, Any]:
    """Invalid (the earliest finding) outranks unknown (every part's undecided keys) outranks
    valid, as one serial run would have it."""
    invalid = [detail for verdict, detail in results if verdict is False]
    if invalid:
        key, outcome, when = min(invalid, key=lambda d: d[2])
        return False, (key, outcome, when)
    unknown = [detail for verdict, detail in results if verdict == "unknown"]
    if unknown:
        keys = [k for ks, _ in unknown for k in ks]
        return "unknown", (keys, unknown[0][1])
    return True, None

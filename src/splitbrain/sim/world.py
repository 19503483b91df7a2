"""The simulated world of one seed: the loop, the network, the disks' latency, the node logs.

    world = World(seed, Physics())
    result = world.run(main())        # runs main() in virtual time; closes everything after

Rules it keeps:
- Every random choice of the world comes from rngs seeded by the seed, one per concern (network
  delays, disk delays, process start times), so changing how often one is drawn does not shift
  the others.
- The virtual wall clock starts at `EPOCH` (2000-01-01T00:00:00Z): node events carry
  `EPOCH_NS + virtual ns`; node.log lines start with that instant in ISO-8601 with a "Z", which
  the report reads like any real node log.
- Log records of `splitbrain.node` (the node code's logger) go to the node.log of the simulated
  process that emits them, and nowhere once that process is dead. Errors the loop would print
  (an exception nobody retrieved) go to that process's output.log, or to `errors` for the driver.
"""

from __future__ import annotations

import contextlib
import logging
import random
import traceback
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any, TypeVar

from splitbrain.sim.loop import ProcessKilled, SimLoop, current_process
from splitbrain.sim.net import SimNet

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
EPOCH_NS = int(EPOCH.timestamp()) * 10**9
NODE_LOGGER = "splitbrain.node"

T = TypeVar("T")


@dataclass(frozen=True)
class Physics:
    """How the simulated machines behave, in seconds: (lowest, highest) of uniform draws, and
    for delays a heavy tail (chance, longest): with that chance a delay is drawn instead
    log-uniformly between the usual highest and `longest` — a TCP retransmission stalling a
    stream (and everything behind it), an fsync that waits behind the disk's other writes.
    `timeouts`: the chances that a node's randomized election timeout is the earliest, or the
    latest, its range allows (else uniform; see TimerEdges)."""

    latency: tuple[float, float] = (0.0001, 0.002)  # one-way delay of a chunk of bytes
    disk: tuple[float, float] = (0.0002, 0.004)  # a WAL write + fsync
    boot: tuple[float, float] = (0.01, 0.1)  # from process start to the node's first line
    latency_tail: tuple[float, float] = (0.0, 0.0)  # (chance, longest)
    disk_tail: tuple[float, float] = (0.0, 0.0)
    timeouts: tuple[float, float] = (0.0, 0.0)  # (chance of the earliest, of the latest)

    def to_json(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Physics:
        return cls(**{k: (float(v[0]), float(v[1])) for k, v in data.items()})


def _delays(rng: random.Random, usual: tuple[float, float], tail: tuple[float, float]
            ) -> Callable[[], float]:  # fmt: skip
    """Draws of a delay: uniform in `usual`, or with the tail's chance log-uniform up to its
    longest. Without a tail, one draw per delay (the stream of an older seed is unchanged)."""
    lo, hi = usual
    chance, longest = tail
    if not chance or longest <= hi:
        return lambda: rng.uniform(lo, hi)
    short = max(hi, 1e-6)

    def delay() -> float:
        if rng.random() < chance:
            return short * (longest / short) ** rng.random()
        return rng.uniform(lo, hi)

    return delay


class TimerEdges(random.Random):
    """A node's randomness, pushing its timers to the edges of their range: `randrange(a, b)`
    (the core draws its election timeout so, raft.py) is `a` with the chance `edges[0]`, the
    last value with the chance `edges[1]`, else uniform. A follower that calls its election at
    the earliest instant the protocol allows is where leases, vote stickiness and CheckQuorum
    are tightest; uniform draws land on that edge once in `election_tick` timeouts."""

    def __init__(self, seed: str, edges: tuple[float, float]) -> None:
        super().__init__(seed)
        self.edges = edges

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        if stop is None:
            return super().randrange(start)
        earliest, latest = self.edges
        draw = self.random()
        if draw < earliest:
            return start
        if draw < earliest + latest:
            return range(start, stop, step)[-1]
        return super().randrange(start, stop, step)


def node_random(seed: str, edges: tuple[float, float]) -> random.Random:
    """The randomness of one life of a node: TimerEdges, or (no edges) plain draws, whose
    stream an older seed's replay needs unchanged."""
    return TimerEdges(seed, edges) if any(edges) else random.Random(seed)


def iso(ns: int) -> str:
    """ns since the Unix epoch as 2000-01-01T00:00:01.234567Z (microseconds)."""
    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class World:
    def __init__(self, seed: int, physics: Physics) -> None:
        self.seed = seed
        self.physics = physics
        self.loop = SimLoop()
        net_rng = random.Random(f"{seed}:net")
        disk_rng = random.Random(f"{seed}:disk")
        self._boot_rng = random.Random(f"{seed}:boot")
        self.net = SimNet(self.loop, _delays(net_rng, physics.latency, physics.latency_tail))
        self.loop.executor_delay = _delays(disk_rng, physics.disk, physics.disk_tail)
        self.loop.set_exception_handler(self._exception)
        self.errors: list[str] = []  # what the driver's side of the loop could not handle
        self._pids = 1000

    def clock_ns(self) -> int:
        """The virtual wall clock, in ns since the Unix epoch, as the running process reads
        it (a clock fault skews it)."""
        return EPOCH_NS + round(self.loop.time() * 1e9)

    def event_ns(self) -> int:
        """The virtual wall clock as no clock fault skews it: what the nodes stamp their
        events with (and the invariants their violations), so that the checkers can compare
        event times across nodes in every simulation, clock faults or not."""
        return EPOCH_NS + round(self.loop.now * 1e9)

    def boot_delay(self) -> float:
        lo, hi = self.physics.boot
        return self._boot_rng.uniform(lo, hi)

    def next_pid(self) -> int:
        self._pids += 1
        return self._pids

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        """Run `main` to its end in virtual time, then close the world."""
        try:
            with _node_logging(self):
                return self.loop.run_until_complete(main)
        finally:
            self.loop.end()
            self.net.close()

    def _exception(self, loop: Any, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, ProcessKilled):
            return
        text = context.get("message", "error")
        if exc is not None:
            text += "\n" + "".join(traceback.format_exception(exc)).rstrip()
        proc = current_process()
        output: IO[str] | None = getattr(proc, "output", None)
        if proc is not None and output is not None:
            if proc.alive:
                output.write(text + "\n")
        else:
            self.errors.append(text)


class _NodeLogHandler(logging.Handler):
    def __init__(self, world: World) -> None:
        super().__init__(logging.INFO)
        self.world = world

    def emit(self, record: logging.LogRecord) -> None:
        proc = current_process()
        log: IO[str] | None = getattr(proc, "log", None)
        if proc is None or log is None or not proc.alive:
            return
        line = f"{iso(self.world.clock_ns())} {proc.name} {record.levelname} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + logging.Formatter().formatException(record.exc_info)
        log.write(line + "\n")


@contextlib.contextmanager
def _node_logging(world: World) -> Iterator[None]:
    logger = logging.getLogger(NODE_LOGGER)
    saved = (logger.handlers, logger.level, logger.propagate)
    logger.handlers = [_NodeLogHandler(world)]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.handlers, logger.level, logger.propagate = saved[0], saved[1], saved[2]

"""The interpreter: runs the workload's clients and the nemesis, and records the history.

Phases (DESIGN.md, data flow of one run):
  1. main     — `concurrency` workers invoke operations (rate-limited) while the nemesis injects
                faults, until the time limit;
  2. heal     — the nemesis heals the network, resumes paused nodes and starts killed ones;
  3. recovery — wait (with a deadline) until the cluster has a leader again;
  4. final    — read every key that was touched, retrying until each read succeeds (deadline).

Every invocation and completion is appended to history.jsonl as it happens. After an `info`
completion a worker's process is finished: the worker continues as process `p + concurrency`
on fresh connections (DESIGN.md) but with the same client, as a real client keeps its session
through a timeout: its requests go on under one client id with increasing sequence numbers,
so a server's exactly-once table holds one session per worker, not one per indeterminate
operation (which grew without bound over a long run).

The interpreter feeds the workload the seconds since a fault last healed (a nemesis event in
HEALS), and tells `on_invoke` (a nemesis's RequestPulse) right before each request is sent.
Time is read only through the event loop (history times are ns since `run()` began), so the
simulator's virtual clock drives it as the real one does.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from splitbrain.history import HistoryWriter
from splitbrain.workloads.generator import READS, Invocation
from splitbrain.workloads.registry import Workload


class Client(Protocol):
    async def invoke(self, f: str, key: str | None, value: Any) -> Any: ...  # -> Outcome
    async def close(self) -> None: ...


class Nemesis(Protocol):
    async def run(self, record: Callable[[str, Any], None], stop: asyncio.Event) -> None: ...
    async def heal_all(self, record: Callable[[str, Any], None]) -> None: ...
    def in_force(self) -> list[str]: ...


ClientFactory = Callable[[int, str], Client]  # (first process, home node) -> a client
# Nemesis events after which the cluster is whole again somewhere: the workload runs hot.
HEALS = frozenset({"stop-partition", "stop-churn", "stop-net-fault", "start", "resume"})


@dataclass(frozen=True)
class Options:
    concurrency: int = 10  # number of workers
    time_limit: float = 30.0  # seconds of the main phase
    rate: float = 0.0  # total operations per second; 0 = as fast as the cluster answers
    op_timeout: float = 1.0  # seconds before an operation is abandoned as info
    reads: float = READS  # share of operations that are reads
    recovery_timeout: float = 15.0  # seconds to wait for a leader after healing
    final_timeout: float = 30.0  # seconds for the final reads
    seed: int = 0


@dataclass
class Tally:
    """Live counts for the progress display and the summary."""

    phase: str = "starting"
    clock: Callable[[], float] = time.monotonic  # the event loop's, once the run began
    started: float = field(default_factory=time.monotonic)
    counts: Counter[str] = field(default_factory=Counter)  # ok / fail / info
    faults: int = 0
    final_unread: int = 0  # keys whose final read has not succeeded (yet)
    leader_after_heal: bool | None = None

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started


class Interpreter:
    """Runs one workload against one cluster; see the module docstring for the phases."""

    def __init__(
        self,
        workload: Workload,
        nodes: Sequence[str],
        clients: ClientFactory,
        nemesis: Nemesis | None,
        writer: HistoryWriter,
        options: Options,
        *,
        leader: Callable[[], Any] | None = None,  # async () -> node | None
        on_invoke: Callable[[], None] | None = None,  # told right before each request
    ) -> None:
        self.workload = workload
        self.nodes = list(nodes)
        self.clients = clients
        self.nemesis = nemesis
        self.writer = writer
        self.options = options
        self.leader = leader
        self.on_invoke = on_invoke
        # The running event loop's clock from run() on (virtual in the simulator); before
        # that, the clock of asyncio's own loops.
        self._time: Callable[[], float] = time.monotonic
        self._t0 = self._time()
        self._healed: int | None = None  # when a fault last healed (self.now())
        self._n = 0  # operations issued so far (drives key rotation and unique tokens)
        self._next_slot = 0.0  # rate limiter: monotonic time of the next free slot
        self._top_process = -1  # the highest process number that has invoked an operation
        self.keys: dict[str, None] = {}  # every key touched, in first-touch order
        self.tally = Tally()

    def now(self) -> int:
        """ns since the run began, on the event loop's clock."""
        return round((self._time() - self._t0) * 1e9)

    def record_fault(self, f: str, value: Any) -> None:
        now = self.now()
        self.writer.record(now, "nemesis", "info", f, value)
        self.tally.faults += 1
        if f in HEALS:
            self._healed = now

    def heal_age(self) -> float | None:
        """Seconds since a fault last healed, or None if none has."""
        return None if self._healed is None else (self.now() - self._healed) / 1e9

    async def run(self) -> Tally:
        loop = asyncio.get_running_loop()
        self._time = self.tally.clock = loop.time
        self._t0 = self.tally.started = loop.time()
        await self._main()
        await self._heal()
        await self._recover()
        await self._final_reads()
        self.tally.phase = "done"
        return self.tally

    # -- phase 1 -------------------------------------------------------------------------------

    async def _main(self) -> None:
        self.tally.phase = "main"
        stop = asyncio.Event()
        workers = [
            asyncio.create_task(self._worker(w, stop), name=f"worker-{w}")
            for w in range(self.options.concurrency)
        ]
        tasks = list(workers)
        if self.nemesis is not None:
            tasks.append(asyncio.create_task(self.nemesis.run(self.record_fault, stop)))
        try:
            done, _ = await asyncio.wait(tasks, timeout=self.options.time_limit,
                                         return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # a crashed worker or nemesis is a harness failure: raise it
            stop.set()
            # Workers finish their current operation (bounded by its timeout).
            grace = self.options.op_timeout + 30
            try:
                await asyncio.wait_for(asyncio.gather(*tasks), grace)
            except TimeoutError:
                raise TimeoutError(f"the workers did not end within {grace:g} s of the time "
                                   "limit (a harness bug: each operation is bounded)") from None
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _pace(self) -> None:
        if self.options.rate <= 0:
            return
        now = self._time()
        slot = max(self._next_slot, now)
        self._next_slot = slot + 1.0 / self.options.rate
        # Never past the main phase: more workers than the rate serves in it queue slots far
        # beyond (3000 workers at 80 ops/s: 37 s), and their sleeps outlasted the wait for
        # the workers to finish.
        slot = min(slot, self._t0 + self.options.time_limit)
        if slot > now:
            await asyncio.sleep(slot - now)

    async def _worker(self, worker: int, stop: asyncio.Event) -> None:
        rng = random.Random(f"{self.options.seed}:worker:{worker}")
        home = self.nodes[worker % len(self.nodes)]
        process = worker
        client = self.clients(process, home)
        try:
            while not stop.is_set():
                await self._pace()
                if stop.is_set():
                    break
                op = self.workload.next_op(rng, process, self._n, self.heal_age(),
                                           self.options.reads)
                self._n += 1
                outcome = await self._invoke(client, process, op)
                if outcome == "info":
                    await client.close()  # its next request opens fresh connections
                    process += self.options.concurrency
        finally:
            await client.close()

    async def _invoke(self, client: Client, process: int, op: Invocation) -> str:
        """Invoke one operation and record its invocation and completion; returns the type."""
        self._top_process = max(self._top_process, process)
        if op.key is not None:
            self.keys.setdefault(op.key)
        self.writer.record(self.now(), process, "invoke", op.f, op.value, key=op.key)
        if self.on_invoke is not None:
            self.on_invoke()
        try:
            out = await client.invoke(op.f, op.key, op.value)
        except asyncio.CancelledError:
            raise  # the invoke stays open: read as info (DESIGN.md)
        except Exception as exc:  # a client bug must not lose the op: it may have happened
            self.writer.record(self.now(), process, "info", op.f, op.value, key=op.key,
                               error=f"client error: {type(exc).__name__}: {exc}")
            self.tally.counts["info"] += 1
            return "info"
        value = out.value if out.type == "ok" else op.value
        extra = {"request": out.request} if getattr(out, "request", None) else None
        self.writer.record(self.now(), process, out.type, op.f, value, key=op.key,
                           node=out.node, error=out.error, extra=extra)
        self.tally.counts[out.type] += 1
        return str(out.type)

    # -- phases 2 and 3 ------------------------------------------------------------------------

    async def _heal(self) -> None:
        self.tally.phase = "heal"
        if self.nemesis is not None:
            await self.nemesis.heal_all(self.record_fault)

    async def _recover(self) -> None:
        self.tally.phase = "recovery"
        if self.leader is None:
            return
        deadline = self._time() + self.options.recovery_timeout
        while self._time() < deadline:
            if await self.leader() is not None:
                self.tally.leader_after_heal = True
                return
            await asyncio.sleep(0.05)
        self.tally.leader_after_heal = False

    # -- phase 4 -------------------------------------------------------------------------------

    async def _final_reads(self) -> None:
        """Read every touched key until the read succeeds, `concurrency` keys at a time."""
        self.tally.phase = "final reads"
        pending = list(self.keys)
        self.tally.final_unread = len(pending)
        deadline = self._time() + self.options.final_timeout
        next_process = self._top_process + 1

        def fresh_process() -> int:
            nonlocal next_process
            next_process += 1
            return next_process - 1

        async def reader(worker: int) -> None:
            home = self.nodes[worker % len(self.nodes)]
            process = fresh_process()
            client = self.clients(process, home)
            try:
                while pending and self._time() < deadline:
                    key = pending.pop(0)
                    while self._time() < deadline:
                        outcome = await self._invoke(client, process, self.workload.final_read(key))
                        if outcome == "ok":
                            self.tally.final_unread -= 1
                            break
                        if outcome == "info":
                            await client.close()
                            process = fresh_process()
                        await asyncio.sleep(0.05)
            finally:
                await client.close()

        workers = min(self.options.concurrency, len(pending))
        await asyncio.gather(*(reader(w) for w in range(workers)))

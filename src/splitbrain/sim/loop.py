"""A deterministic asyncio event loop in virtual time, and the simulated processes it runs.

    loop = SimLoop()
    node = loop.process("n1")                 # a simulated process
    node.spawn(main())                        # its tasks, callbacks and timers belong to it
    loop.run_until_complete(driver())         # virtual time: sleeping costs no wall time

The loop is CPython's own `BaseEventLoop` (3.11) with its iteration (`_run_once`) done in
virtual time: when no callback is ready, `_wait` moves the virtual clock to the next timer
instead of waiting for I/O. The callback queue, the iteration's steps and Task/Future are
asyncio's, so the code under test runs exactly as on a real loop. What it overrides, and why:

- `_run_once`: asyncio's steps in asyncio's order, without its debug mode, on a timer heap of
  (when, number, timer) tuples: timers due at one instant run in the order they were set
  (asyncio's heap of handles breaks such ties by its history, so an unrelated timer could
  reorder two others), and tuples compare in C. The loop is most of the simulator's own cost.

- `time()`: the virtual clock (seconds from 0), or, in a process whose clock is skewed
  (`set_clock`, the clock fault), that process's clock: a function of virtual time
  (cluster/clocks.Skew). A timer a skewed process sets is due when its own clock reads the
  deadline, and moves when its clock changes, as timed waits under libfaketime do.
- `_call_soon`/`call_at`: every handle remembers the simulated process it belongs to — the
  `Process` in the context it runs in (a task's context is copied from its creator's, so a
  process's tasks and everything they schedule stay its own). A handle of a paused process is
  held until it resumes (SIGSTOP: its timers fire late; on SIGCONT, as asyncio's loop does, it
  runs what was ready, then the I/O that arrived, then its expired timers); one of a dead
  process never runs (kill -9). Handles of no process (the driver, the clients, the network)
  always run.
- `create_task`: remembers each process's tasks, so that killing a process can close their
  coroutines at once, in the dead process's own context, where every effect is dropped (no
  `finally` of a killed node may write a log line or an event later, when garbage collected).
- `run_in_executor`: no threads; the function runs as a callback of the calling process after
  `executor_delay()` seconds (the simulated disk's latency for the WAL's fsync).
- `create_server`/`create_connection`: the simulated network (net.py); no real I/O exists.

Rules it keeps: the same program on the same seed runs the same callbacks in the same order
(asyncio's queues are FIFO; timers due at one instant run in the order they were set), the
simulated code never sees the wall clock, and the loop stops with `SimulationStuck` rather than
spin or block forever. A budget (`limit`) of loop iterations, or of this process's CPU time,
ends a simulation that does too much work (a broken Raft resending its log forever):
`SimulationStopped` says after how many iterations, which is what a replay stops after.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import inspect
import sys
import time
from asyncio import base_events, events
from collections.abc import Callable, Coroutine
from typing import IO, TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from splitbrain.cluster.clocks import Skew
    from splitbrain.sim.net import SimNet

RUNNING, PAUSED, DEAD = "running", "paused", "dead"
MAX_CALLBACKS_AT_ONE_INSTANT = 500_000  # more without time moving: a busy loop, not a system
CPU_CHECK = 4096  # loop iterations between looks at the CPU budget

_CURRENT: contextvars.ContextVar[Process | None] = contextvars.ContextVar(
    "splitbrain_sim_process", default=None
)
_WORLD = contextvars.Context()  # the context of callbacks that belong to no process


def current_process() -> Process | None:
    """The simulated process whose callback is running (None: the driver or the world)."""
    return _CURRENT.get()


class SimulationStuck(RuntimeError):
    """Nothing can ever happen again (a deadlock), or time stopped moving (a busy loop)."""


# How a process still running when the world ends (a simulation stopped by its budget) is
# killed: by the harness, not a crash of its own.
ENDED = "the simulation ended"


class SimulationStopped(Exception):
    """The simulation used up its budget (`SimLoop.limit`): `steps` loop iterations ran, up to
    virtual time `at`. Stopping after the same number of steps reproduces it exactly."""

    def __init__(self, steps: int, at: float) -> None:
        super().__init__(f"stopped after {steps} steps at {at:.6f} s (virtual)")
        self.steps = steps
        self.at = at


class ProcessKilled(BaseException):
    """Raised by `Process.die()` in the dying process: unwinds the callback that called it.
    (A BaseException, so that no `except Exception` of the code under test swallows it.)"""


class Process:
    """A simulated OS process: the callbacks, timers and tasks run in its context.

    `kill()` is kill -9 (nothing of it runs again; resources registered with `own` are
    released, e.g. its connections reset), `pause()`/`resume()` are SIGSTOP/SIGCONT, `die()`
    is a kill from inside (a crash point). `exited` says how it ended, once it has.
    """

    def __init__(self, loop: SimLoop, name: str) -> None:
        self.loop = loop
        self.name = name
        self.state = RUNNING
        self.exited: str | None = None  # "killed", "died" (by itself), "exited", "crashed: ..."
        self.context = contextvars.Context()
        self.context.run(_CURRENT.set, self)
        self._held: list[events.Handle] = []
        self._tasks: dict[asyncio.Task[Any], None] = {}
        self._pruned_at = 64
        self._owned: dict[object, Callable[[], None]] = {}
        self.log: IO[str] | None = None  # where its node.log lines go (world.py)
        self.skew: Skew | None = None  # its clock; None: the loop's (set with loop.set_clock)
        self.output: IO[str] | None = None  # where its unhandled errors go (its output.log)

    def __repr__(self) -> str:
        return f"<Process {self.name} {self.state}>"

    @property
    def alive(self) -> bool:
        return self.state is not DEAD

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        """A task of this process."""
        if current_process() is self:
            return self.loop.create_task(coro, name=name)
        return self.context.run(self.loop.create_task, coro, name=name)

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> events.TimerHandle:
        return self.loop.call_at(when, callback, *args, context=self.context)

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> events.Handle:
        return self.loop.call_soon(callback, *args, context=self.context)

    def own(self, resource: object, release: Callable[[], None]) -> None:
        """Call `release()` if this process is killed while it holds `resource`."""
        self._owned[resource] = release

    def disown(self, resource: object) -> None:
        self._owned.pop(resource, None)

    def pause(self) -> bool:
        if self.state is not RUNNING:
            return False
        self.state = PAUSED
        return True

    def resume(self) -> bool:
        if self.state is not PAUSED:
            return False
        self.state = RUNNING
        held, self._held = self._held, []
        # As asyncio's loop runs after SIGCONT: what was ready, then what arrived on its
        # sockets (select returns them first), then the timers that ran out meanwhile.
        held.sort(key=_resume_rank)  # stable: each kind in the order it came
        for handle in held:
            self.loop._add_callback(handle)
        return True

    def kill(self, how: str = "killed") -> bool:
        """kill -9: nothing of this process runs again. False if it was dead already."""
        if self.state is DEAD:
            return False
        self.state = DEAD
        self.exited = how
        self._held.clear()
        owned, self._owned = self._owned, {}
        for release in owned.values():
            release()
        # After the running callback, which may be this process's own (die() unwinds it).
        self.loop.call_soon(self._reap, context=_WORLD)
        return True

    def exit(self, how: str) -> None:
        """The process ends by itself (its main returned or raised): as kill(), from inside."""
        self.kill(how)

    def die(self) -> NoReturn:
        """Kill this process from inside it: the rest of the running callback never happens."""
        self.kill("died")
        raise ProcessKilled(self.name)

    def _task_started(self, task: asyncio.Task[Any]) -> None:
        tasks = self._tasks
        tasks[task] = None
        if len(tasks) > self._pruned_at:
            self._tasks = {t: None for t in tasks if not t.done()}
            self._pruned_at = 2 * len(self._tasks) + 64

    def _reap(self) -> None:
        tasks, self._tasks = list(self._tasks), {}
        for task in tasks:
            if not task.done():
                task._log_destroy_pending = False  # type: ignore[attr-defined]
                self.context.run(_close, task.get_coro())


def _close(coro: Any) -> None:
    """Close a coroutine and every coroutine it awaits, innermost first, so that a finally
    block that awaits is closed in turn, and no "coroutine ignored GeneratorExit" ever reaches
    an outer frame as an exception its code could catch. Nothing is left suspended for the
    garbage collector to finish later, in another process's context. Whatever it raises is
    dropped: the process is dead."""
    for _ in range(10_000):
        if coro.cr_frame is None:
            return
        inner = coro
        while inspect.iscoroutine(inner.cr_await) and inner.cr_await.cr_frame is not None:
            inner = inner.cr_await
        with contextlib.suppress(BaseException):  # see the docstring
            inner.close()


class _Handle(events.Handle):
    """A callback that knows its process (`_proc`). `__init__` is asyncio's without the debug
    mode's traceback (the simulator never runs in debug mode): handles are made by the million."""

    __slots__ = ("_proc",)

    def __init__(self, callback: Any, args: Any, loop: SimLoop, context: Any) -> None:
        self._callback, self._args, self._loop = callback, args, loop
        self._context = contextvars.copy_context() if context is None else context
        self._cancelled = False
        self._repr = self._source_traceback = None
        self._proc = self._context.get(_CURRENT)

    def _run(self) -> None:
        proc: Process | None = self._proc
        if proc is not None and proc.state is not RUNNING:
            if proc.state is PAUSED:
                proc._held.append(self)
            return
        events.Handle._run(self)


class _TimerHandle(events.TimerHandle):
    """A timer that knows its process (`_proc`) and whose clock it was set on (`_frame`);
    `_io`: it stands for I/O (a delivery of the simulated network: `SimLoop.call_io_at`)."""

    __slots__ = ("_frame", "_io", "_proc")

    _run = _Handle._run  # type: ignore[assignment]

    def __init__(self, when: float, callback: Any, args: Any, loop: SimLoop, context: Any,
                 frame: Process | None) -> None:  # fmt: skip
        _Handle.__init__(self, callback, args, loop, context)  # type: ignore[arg-type]
        self._when = when
        self._scheduled = True
        self._frame = frame
        self._io = False


def _resume_rank(handle: events.Handle) -> int:
    """Where a held handle runs when its process resumes: ready callbacks, I/O, timers."""
    if not isinstance(handle, _TimerHandle):
        return 0
    return 1 if handle._io else 2


class SimLoop(asyncio.BaseEventLoop):
    """See the module docstring. `net` is the simulated network (set by its constructor)."""

    def __init__(self) -> None:
        super().__init__()
        self._now = 0.0
        self._clock_resolution = 1e-9
        self._idle_steps = 0  # iterations in a row without time moving
        self.net: SimNet | None = None
        self.executor_delay: Callable[[], float] = lambda: 0.0
        self.processes: list[Process] = []
        self._timers = 0  # timers set so far: the heap's tie-break (see the module docstring)
        self.steps = 0  # iterations of the loop so far (one per `_wait`)
        self.max_steps = sys.maxsize
        self.cpu_deadline = float("inf")

    def limit(self, steps: int | None = None, cpu_seconds: float | None = None) -> None:
        """Stop (SimulationStopped) after `steps` iterations, or once this process has used
        `cpu_seconds` more of CPU. The step at which a CPU budget ran out is in the exception:
        a step limit is what replays it (the CPU time of a machine is not reproducible)."""
        if steps is not None:
            self.max_steps = steps
        if cpu_seconds is not None:
            self.cpu_deadline = time.process_time() + cpu_seconds

    def process(self, name: str) -> Process:
        proc = Process(self, name)
        self.processes.append(proc)
        return proc

    @property
    def now(self) -> float:
        """Virtual time, as no process's clock skews it."""
        return self._now

    def time(self) -> float:
        proc = _CURRENT.get()
        if proc is None or proc.skew is None:
            return self._now
        return proc.skew.at(self._now)

    def set_clock(self, proc: Process, skew: Skew) -> None:
        """From now on `proc` reads its time from `skew`; the timers it set move with it."""
        old, proc.skew = proc.skew, skew
        scheduled = self._scheduled  # type: ignore[attr-defined]
        for i, (when, number, timer) in enumerate(scheduled):
            if timer._frame is proc:
                reading = when if old is None else old.at(when)
                timer._when = max(self._now, skew.real(reading))
                scheduled[i] = (timer._when, number, timer)
        heapq.heapify(scheduled)

    def end(self) -> None:
        """Kill every process, cancel what the driver left running, close the loop."""
        for proc in self.processes:
            proc.kill(ENDED)
        self._idle_steps = 0  # a fresh count of steps without time moving
        self.max_steps, self.cpu_deadline = sys.maxsize, float("inf")
        with contextlib.suppress(Exception):
            self.run_until_complete(asyncio.sleep(0))  # the reaps of those kills
        left = [t for t in asyncio.all_tasks(self)  # the driver's (the others are reaped)
                if t._log_destroy_pending]  # type: ignore[attr-defined]
        for task in left:
            task.cancel()
        self._idle_steps = 0
        with contextlib.suppress(Exception):
            if left:  # (gather() of nothing would make asyncio create a loop of its own)
                self.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        for task in left:  # stuck on a dead process: closed like a dead process's own
            if not task.done():
                task._log_destroy_pending = False  # type: ignore[attr-defined]
                _close(task.get_coro())
        self.close()

    # Every handle knows its process (see the module docstring).

    def call_soon(self, callback: Any, *args: Any, context: Any = None) -> events.Handle:
        self._check_closed()  # type: ignore[attr-defined]
        return self._call_soon(callback, args, context)  # asyncio's, without its debug mode

    def _call_soon(self, callback: Any, args: Any, context: Any) -> events.Handle:
        handle = _Handle(callback, args, self, context)
        self._ready.append(handle)  # type: ignore[attr-defined]
        return handle

    def call_at(self, when: float, callback: Any, *args: Any, context: Any = None
                ) -> events.TimerHandle:  # fmt: skip
        self._check_closed()  # type: ignore[attr-defined]
        caller = _CURRENT.get()  # `when` is on the caller's clock
        frame = caller if caller is not None and caller.skew is not None else None
        if frame is not None:
            when = max(self._now, frame.skew.real(when))  # type: ignore[union-attr]
        timer = _TimerHandle(when, callback, args, self, context, frame)
        self._timers += 1
        heapq.heappush(self._scheduled, (when, self._timers, timer))  # type: ignore[attr-defined]
        return timer

    def call_io_at(self, when: float, callback: Any, *args: Any, context: Any = None
                   ) -> events.TimerHandle:  # fmt: skip
        """`call_at` for I/O that arrives at `when` (the simulated network's deliveries): a
        resumed process handles it before its own timers, as select() returns first."""
        timer = self.call_at(when, callback, *args, context=context)
        timer._io = True  # type: ignore[attr-defined]
        return timer

    def create_task(self, coro: Any, *, name: str | None = None, context: Any = None
                    ) -> asyncio.Task[Any]:  # fmt: skip
        task = super().create_task(coro, name=name, context=context)
        proc = _CURRENT.get() if context is None else context.get(_CURRENT)
        if proc is not None:
            if proc.state is DEAD:  # it can never run: closed unstarted (no finally runs)
                task._log_destroy_pending = False  # type: ignore[attr-defined]
                coro.close()
            else:
                proc._task_started(task)
        return task

    def run_in_executor(self, executor: Any, func: Callable[..., Any], *args: Any
                        ) -> asyncio.Future[Any]:  # fmt: skip
        future = self.create_future()

        def call() -> None:
            if future.cancelled():
                return
            try:
                result = func(*args)
            except ProcessKilled:
                raise
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

        self.call_later(self.executor_delay(), call)
        return future

    # The simulated network (net.py).

    async def create_server(self, protocol_factory: Any, host: Any = None, port: Any = None,
                            **kwargs: Any) -> Any:  # fmt: skip
        return await self._network().create_server(protocol_factory, host, port)

    async def create_connection(self, protocol_factory: Any, host: Any = None, port: Any = None,
                                **kwargs: Any) -> Any:  # fmt: skip
        return await self._network().create_connection(protocol_factory, host, port)

    def _network(self) -> SimNet:
        if self.net is None:
            raise RuntimeError("this simulation has no network")
        return self.net

    async def getaddrinfo(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("no real I/O in the simulation")

    def _write_to_self(self) -> None:  # BaseEventLoop's hook to wake a selector: there is none
        pass

    # The loop itself.

    def _run_once(self) -> None:
        """BaseEventLoop._run_once in virtual time: drop cancelled timers, "wait for I/O" (move
        the clock to the first timer, `_wait`), make the timers now due ready, run what is
        ready (not what those callbacks make ready)."""
        scheduled: list[tuple[float, int, events.TimerHandle]] = self._scheduled  # type: ignore[attr-defined]
        ready = self._ready  # type: ignore[attr-defined]
        count = len(scheduled)
        if (count > base_events._MIN_SCHEDULED_TIMER_HANDLES  # type: ignore[attr-defined]
                and self._timer_cancelled_count / count  # type: ignore[attr-defined]
                > base_events._MIN_CANCELLED_TIMER_HANDLES_FRACTION):  # type: ignore[attr-defined]
            kept = []
            for entry in scheduled:
                if entry[2]._cancelled:
                    entry[2]._scheduled = False  # type: ignore[attr-defined]
                else:
                    kept.append(entry)
            scheduled[:] = kept
            heapq.heapify(scheduled)
            self._timer_cancelled_count = 0
        else:
            while scheduled and scheduled[0][2]._cancelled:
                self._timer_cancelled_count -= 1
                heapq.heappop(scheduled)[2]._scheduled = False  # type: ignore[attr-defined]
        self._wait(bool(ready) or self._stopping)  # type: ignore[attr-defined]
        end = self._now + self._clock_resolution
        while scheduled and scheduled[0][0] < end:
            timer = heapq.heappop(scheduled)[2]
            timer._scheduled = False  # type: ignore[attr-defined]
            ready.append(timer)
        for _ in range(len(ready)):
            handle = ready.popleft()
            if not handle._cancelled:
                handle._run()
        handle = None  # no cycle through an exception's traceback

    def _wait(self, busy: bool) -> None:
        """Stands in for the selector's wait: count the step, and unless a callback is ready
        (`busy`), move virtual time to the first timer. Stops at the budget; a loop with
        nothing ready or due is stuck, and so is one whose time stopped moving."""
        self.steps += 1
        if self.steps >= self.max_steps or (
                self.steps % CPU_CHECK == 0 and time.process_time() > self.cpu_deadline):
            raise SimulationStopped(self.steps, self._now)
        scheduled = self._scheduled  # type: ignore[attr-defined]
        if not busy and not scheduled:
            raise SimulationStuck(f"deadlock at {self.time():.6f} s: nothing is ready or due")
        # Jump to the first timer if it is due later, or so soon that it runs now anyway (the
        # loop runs timers due within its clock resolution): code that reads the time next
        # must see its timer's instant, or it may wait for it again and again.
        now = self._now
        first = scheduled[0][0] if scheduled else now
        if first > now and (not busy or first <= now + self._clock_resolution):
            self._now = first
            self._idle_steps = 0
        else:  # a callback is ready, or the first timer is due now
            self._idle_steps += 1
            if self._idle_steps > MAX_CALLBACKS_AT_ONE_INSTANT:
                ready = "; ".join(repr(h) for h in list(self._ready)[:5])  # type: ignore[attr-defined]
                raise SimulationStuck(
                    f"busy loop at {self.time():.6f} s: time stopped moving (ready: {ready})")

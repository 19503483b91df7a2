"""The simulated loop: virtual time, and processes that pause, die and are killed like real ones."""

from __future__ import annotations

import asyncio
import time

import pytest

from splitbrain.cluster.clocks import Skew
from splitbrain.sim import loop as sim_loop
from splitbrain.sim.loop import ProcessKilled, SimLoop, SimulationStuck, current_process


def run(loop: SimLoop, coro):
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.end()


async def ticker(out: list, name: str, dt: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(dt)
        out.append((round(loop.time(), 6), name))


def test_sleeping_costs_no_wall_time_and_time_is_exact():
    loop = SimLoop()

    async def main():
        await asyncio.sleep(3600)
        return loop.time()

    began = time.perf_counter()
    assert run(loop, main()) == 3600.0
    assert time.perf_counter() - began < 1.0


def test_a_paused_process_runs_nothing_until_resumed_and_its_timers_fire_late():
    loop = SimLoop()
    a = loop.process("a")
    out: list = []
    a.spawn(ticker(out, "a", 0.1))

    async def driver():
        await asyncio.sleep(0.35)
        assert a.pause() and not a.pause()
        await asyncio.sleep(0.5)
        assert out[-1] == (0.3, "a")  # nothing while paused
        assert a.resume() and not a.resume()
        await asyncio.sleep(0.21)

    run(loop, driver())
    assert out == [(0.1, "a"), (0.2, "a"), (0.3, "a"), (0.85, "a"), (0.95, "a"), (1.05, "a")]


def test_a_resumed_process_runs_what_was_ready_then_the_io_that_arrived_then_its_timers():
    # As asyncio's loop after SIGCONT: select() returns the sockets that became readable, and
    # their callbacks run before the timers that ran out while the process was stopped.
    loop = SimLoop()
    a = loop.process("a")
    out: list = []

    async def driver():
        a.pause()
        a.call_at(0.1, out.append, "timer 0.1")
        loop.call_io_at(0.2, out.append, "io 0.2", context=a.context)
        a.call_at(0.3, out.append, "timer 0.3")
        loop.call_io_at(0.4, out.append, "io 0.4", context=a.context)
        await asyncio.sleep(0.5)
        a.call_soon(out.append, "ready")
        assert out == []
        a.resume()
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    run(loop, driver())
    assert out == ["ready", "io 0.2", "io 0.4", "timer 0.1", "timer 0.3"]


def test_a_killed_process_never_runs_again_and_its_finally_blocks_have_no_effect():
    loop = SimLoop()
    a, b = loop.process("a"), loop.process("b")
    out: list = []
    seen_in_finally: list = []

    async def node():
        try:
            await ticker(out, "a", 0.1)
        finally:  # closed in the dead process's own context: effects there are dropped
            seen_in_finally.append((current_process().name, current_process().alive))
            asyncio.get_running_loop().create_task(ticker(out, "a", 0.01))  # never runs
            await asyncio.sleep(1)  # a finally that awaits is closed in turn
            seen_in_finally.append("after the await: never")

    a.spawn(node())
    b.spawn(ticker(out, "b", 0.1))

    async def driver():
        await asyncio.sleep(0.25)
        assert a.kill() and not a.kill()
        await asyncio.sleep(0.5)

    run(loop, driver())
    assert [t for t, n in out if n == "a"] == [0.1, 0.2]
    assert [t for t, n in out if n == "b"][-1] == 0.7
    assert seen_in_finally == [("a", False)]
    assert a.exited == "killed"


def test_die_ends_the_running_callback_at_once():
    loop = SimLoop()
    a = loop.process("a")
    out: list = []

    async def node():
        out.append("before")
        current_process().die()
        out.append("after: never")  # pragma: no cover

    async def driver():
        task = a.spawn(node())
        await asyncio.sleep(0.1)
        assert task.done() and isinstance(task.exception(), ProcessKilled)

    run(loop, driver())
    assert out == ["before"] and a.exited == "died" and not a.alive


def test_run_in_executor_runs_in_the_process_after_the_disk_delay():
    loop = SimLoop()
    loop.executor_delay = lambda: 0.004
    a = loop.process("a")
    calls: list = []

    async def node():
        result = await loop.run_in_executor(None, lambda x: calls.append(
            (loop.time(), current_process().name)) or x * 2, 21)
        return result

    async def driver():
        assert await a.spawn(node()) == 42
        a.kill()
        b = loop.process("b")

        async def write():
            await loop.run_in_executor(None, calls.append, "never")

        b.spawn(write())
        await asyncio.sleep(0.001)  # the call is scheduled, not yet run
        b.kill()
        await asyncio.sleep(1)

    run(loop, driver())
    assert calls == [(0.004, "a")]


def test_a_deadlock_is_reported_not_waited_for():
    loop = SimLoop()

    async def main():
        await loop.create_future()  # nothing will ever set it

    with pytest.raises(SimulationStuck, match="deadlock"):
        run(loop, main())


def test_a_busy_loop_is_reported(monkeypatch):
    monkeypatch.setattr(sim_loop, "MAX_CALLBACKS_AT_ONE_INSTANT", 1000)
    loop = SimLoop()

    async def main():
        while True:
            await asyncio.sleep(0)

    with pytest.raises(SimulationStuck, match="busy loop"):
        run(loop, main())


def test_waiting_until_an_instant_closer_than_the_clock_resolution_ends():
    loop = SimLoop()

    async def main():
        target = loop.time() + 1.0 + loop._clock_resolution / 3
        await asyncio.sleep(1.0)
        while loop.time() < target:  # a timer due within the resolution runs "now"...
            await asyncio.sleep(target - loop.time())  # ...so time must move to its instant
        return loop.time()

    assert run(loop, main()) >= 1.0


def test_the_same_program_runs_the_same_callbacks_in_the_same_order():
    def trace() -> list:
        loop = SimLoop()
        out: list = []
        for i, dt in enumerate((0.03, 0.05, 0.03, 0.07)):
            loop.process(f"p{i}").spawn(ticker(out, f"p{i}", dt))

        async def main():
            await asyncio.sleep(1)

        run(loop, main())
        return out

    first = trace()
    assert len(first) > 50 and first == trace()


def test_a_skewed_process_reads_its_own_clock_and_its_timers_follow_it():
    loop = SimLoop()
    a = loop.process("a")
    out: list = []  # (a's clock, the loop's) at each of a's ticks

    async def node():
        while True:
            await asyncio.sleep(1.0)
            out.append((loop.time(), loop._now))

    async def driver():
        loop.set_clock(a, Skew().moved(0.0, rate=2.0))  # twice as fast from the start
        a.spawn(node())
        await asyncio.sleep(1.25)  # a's clock reads 2.5: it ticked at 1 and 2
        assert loop.time() == 1.25 and a.context.run(loop.time) == 2.5
        loop.set_clock(a, a.skew.moved(loop.time(), jump=-2.0))  # a's clock jumps back 2 s
        await asyncio.sleep(2.0)
        return loop.time()

    assert run(loop, driver()) == 3.25
    # The tick a waited for at 3 comes when a reads 3 again: 1 s later than before the jump.
    assert out == [(1.0, 0.5), (2.0, 1.0), (3.0, 2.5), (4.0, 3.0)]

"""Clock faults: a node's clock is a function of real time that libfaketime makes it read.

The probe tests run a child under libfaketime that prints its wall and monotonic clocks, and
check that both follow the function the driver set: a jump, a rate change that does not jump,
a jump taken back, and the same clock after a restart. They need Debian's faketime (CI
installs it) and are skipped with the reason otherwise.
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from splitbrain.cluster import clocks
from splitbrain.cluster.clocks import Skew
from splitbrain.cluster.cluster import Cluster
from splitbrain.raft import machine_clock
from splitbrain.store import create_run
from tests.cluster.driver import FAKE_NODE

needs_faketime = pytest.mark.skipif(clocks.missing() is not None,
                                    reason=f"clock faults cannot run here: {clocks.missing()}")
# Prints its wall and monotonic clocks for every line it reads.
CLOCK_PRINTER = ("import sys, time\nfor _ in sys.stdin:\n"
                 "    print(time.time(), time.monotonic(), flush=True)\n")  # fmt: skip


def test_a_change_takes_effect_at_the_next_whole_second_without_a_jump_of_its_own() -> None:
    skew = clocks.change(Skew(), 1000.3, rate=4.0)
    assert (skew.anchor, skew.value, skew.rate, skew.shift) == (1001.0, 1001.0, 4.0, 0.0)
    assert skew.at(1002.0) == 1005.0 and not skew.normal
    later = clocks.change(skew, 1002.97, jump=-2.0)  # too close to 1003: anchored at 1004
    assert later.anchor == 1004.0 and later.value == skew.at(1004.0) - 2.0
    assert later.rate == 4.0 and later.shift == -2.0
    back = clocks.change(later, 1005.5, rate=1.0, jump=2.0)
    assert back.shift == 0.0 and back.normal and back.at(1006.0) == later.at(1006.0) + 2.0
    with pytest.raises(ValueError, match="must be positive"):
        clocks.change(skew, 0.0, rate=0.0)


def test_the_setting_is_the_function_relative_to_the_process_start() -> None:
    skew = clocks.change(clocks.change(Skew(), 500.5, jump=3.0), 700.2, rate=0.25)
    for start in (0.0, 499.0, 650.25):
        offset, rate = clocks.spec(skew, start).split(" x")
        for t in (start, 701.0, 900.0):
            libfaketime = start + float(offset) + float(rate) * (t - start)
            assert math.isclose(libfaketime, skew.at(t), abs_tol=1e-5)
    assert clocks.spec(Skew(), 123.0) == "+0.000000 x1"


class Probe:
    """A child under libfaketime; `offsets()` compares its clocks with ours."""

    def __init__(self, control: Path, skew: Skew) -> None:
        env, self.started = clocks.environment(control, skew)
        env = {**env, "PATH": "/usr/bin:/bin"}
        self.proc = subprocess.Popen([sys.executable, "-c", CLOCK_PRINTER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip

    def read(self) -> tuple[float, float, float, float, float]:
        """(our wall, our monotonic, its wall, its monotonic, half the round trip): ours at the
        middle of the pipe's round trip during which it read its clocks."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        before, mono_before = time.time(), time.monotonic()
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        wall, mono = map(float, self.proc.stdout.readline().split())
        after, mono_after = time.time(), time.monotonic()
        half = (after - before) / 2
        return before + half, (mono_before + mono_after) / 2, wall, mono, half

    def follows(self, skew: Skew, tolerance: float = 0.05) -> tuple[float, float]:
        """Wait for the next whole second (when the child rereads its setting), then check
        that its wall clock reads skew.at(now) and its monotonic clock advances as its wall
        clock does; returns its (wall, monotonic) rates over 0.4 s."""
        time.sleep(math.floor(time.time()) + 1.05 - time.time())
        ours0, mono0, wall0, theirs0, half0 = self.read()
        time.sleep(0.4)
        ours1, mono1, wall1, theirs1, half1 = self.read()
        for ours, wall, half in ((ours0, wall0, half0), (ours1, wall1, half1)):
            slack = tolerance + half * max(1.0, skew.rate)
            assert abs(wall - skew.at(ours)) < slack, (wall - ours, skew.at(ours) - ours)
        assert abs((theirs1 - theirs0) - (wall1 - wall0)) < tolerance
        return (wall1 - wall0) / (ours1 - ours0), (theirs1 - theirs0) / (mono1 - mono0)

    def close(self) -> None:
        self.proc.kill()
        self.proc.communicate()


@needs_faketime
@pytest.mark.timeout(60)
def test_a_child_clock_jumps_changes_rate_without_jumping_and_keeps_it_across_a_restart(
        tmp_path: Path) -> None:  # fmt: skip
    control = tmp_path / "clock.rc"
    skew = Skew()
    probe = Probe(control, skew)
    try:
        assert probe.follows(skew) == pytest.approx((1.0, 1.0), abs=0.15)
        skew = clocks.change(skew, time.time(), jump=5.0)  # an offset
        clocks.write(control, skew, probe.started)
        assert probe.follows(skew) == pytest.approx((1.0, 1.0), abs=0.15)
        skew = clocks.change(skew, time.time(), rate=4.0)  # continuous at the anchor
        clocks.write(control, skew, probe.started)
        assert probe.follows(skew, tolerance=0.15) == pytest.approx((4.0, 4.0), rel=0.1)
        skew = clocks.change(skew, time.time(), rate=0.25, jump=-skew.shift)  # jump taken back
        clocks.write(control, skew, probe.started)
        assert probe.follows(skew) == pytest.approx((0.25, 0.25), abs=0.1)
    finally:
        probe.close()
    restarted = Probe(control, skew)  # a new life: the same function of real time
    try:
        assert restarted.follows(skew) == pytest.approx((0.25, 0.25), abs=0.1)
    finally:
        restarted.close()


@needs_faketime
@pytest.mark.timeout(60)
def test_a_cluster_with_clocks_starts_its_nodes_under_libfaketime(tmp_path: Path) -> None:
    async def main() -> None:
        run = create_run(tmp_path, "clocks")
        async with Cluster(run, ["n1", "n2"], target=FAKE_NODE, clocks=True) as cluster:
            pid = cluster.pids()["n1"]
            environ = psutil.Process(pid).environ()
            assert clocks.library() in environ["LD_PRELOAD"]
            control = Path(environ["FAKETIME_TIMESTAMP_FILE"])
            assert control == run.node_dir("n1") / "clock.rc"
            assert control.read_text() == "+0.000000 x1\n"
            assert await cluster.set_clock("n1", 0.5)
            assert not await cluster.set_clock("n1", 0.5)  # no change
            assert control.read_text().endswith(" x0.5\n") and cluster.skewed() == ["n1"]
            before = control.read_text()
            await cluster.restart("n1")  # a new life keeps its clock, written for its start
            assert psutil.Process(cluster.pids()["n1"]).environ()["FAKETIME_TIMESTAMP_FILE"] == (
                str(control))
            assert control.read_text() != before and control.read_text().endswith(" x0.5\n")
            assert await cluster.set_clock("n1", 1.0) and cluster.skewed() == []
            assert await cluster.set_clock("n2", jump=-2.0) and cluster.skewed() == ["n2"]
            assert await cluster.normal_clock("n2") and cluster.skewed() == []
            assert not await cluster.normal_clock("n2")
        async with Cluster(create_run(tmp_path, "plain"), ["n1", "n2"],
                           target=FAKE_NODE) as plain:  # fmt: skip
            assert "FAKETIME_TIMESTAMP_FILE" not in psutil.Process(plain.pids()["n1"]).environ()
            with pytest.raises(ValueError, match="without clock faults"):
                await plain.set_clock("n1", 2.0)

    asyncio.run(main())


@needs_faketime
@pytest.mark.timeout(60)
def test_events_are_stamped_with_the_machine_clock_that_libfaketime_does_not_skew(
        tmp_path: Path) -> None:  # fmt: skip
    # raft/machine_clock.py reads the clock by the system call, past libfaketime: a node set a
    # day back stamps its events with the machine's time, and says so.
    code = ("import time; from splitbrain.raft import machine_clock as m; "
            "print(m.UNSKEWED, m.now_ns(), time.time_ns())")
    env = {**clocks.environment(tmp_path / "clock.rc", Skew())[0], "FAKETIME": "-1d"}
    child = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env},
                           capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
    unskewed, machine, own = child.stdout.split()
    now = time.time_ns()
    assert unskewed == "True"
    assert abs(int(machine) - now) < 10 * 10**9  # the machine's clock
    assert abs(int(own) - (now - 86_400 * 10**9)) < 10 * 10**9  # its own, a day back
    assert clocks.syscall_faked() is False  # so the driver does not tell it otherwise
    libc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env, machine_clock.ENV: "libc"},
                          timeout=30, check=True)  # fmt: skip
    assert libc.stdout.split()[0] == "False"  # told to read its own clock, it says so

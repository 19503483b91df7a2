"""Clock faults: libfaketime's control file sets the rate of a node's clock while it runs.

Needs Debian's faketime (CI installs it); skipped with the reason otherwise.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from splitbrain.cluster import clocks
from splitbrain.cluster.cluster import Cluster
from splitbrain.store import create_run
from tests.cluster.driver import FAKE_NODE

needs_faketime = pytest.mark.skipif(clocks.missing() is not None,
                                    reason=f"clock faults cannot run here: {clocks.missing()}")
# Prints its monotonic clock for every line it reads: the test compares it with its own.
CLOCK_PRINTER = "import sys, time\nfor _ in sys.stdin:\n    print(time.monotonic(), flush=True)\n"


def test_a_rate_is_written_as_libfaketime_reads_it(tmp_path: Path) -> None:
    control = tmp_path / "clock.rc"
    clocks.write(control, 0.25)
    assert control.read_text() == "+0 x0.25\n"
    clocks.write(control)
    assert control.read_text() == "+0 x1\n"
    with pytest.raises(ValueError, match="must be positive"):
        clocks.spec(0.0)


@needs_faketime
@pytest.mark.timeout(60)
def test_a_child_clock_follows_its_control_file_while_it_runs(tmp_path: Path) -> None:
    control = tmp_path / "clock.rc"
    env = {**clocks.environment(control), "PATH": "/usr/bin:/bin"}
    assert control.read_text() == "+0 x1\n"
    proc = subprocess.Popen([sys.executable, "-c", CLOCK_PRINTER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None

    def rate(window: float = 0.3) -> float:
        """The child's clock against ours over `window` seconds."""
        ticks = []
        for _ in range(2):
            t = time.monotonic()
            proc.stdin.write("\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
            ticks.append((t, float(proc.stdout.readline())))  # type: ignore[union-attr]
            time.sleep(window)
        (ours0, theirs0), (ours1, theirs1) = ticks
        return (theirs1 - theirs0) / (ours1 - ours0)

    def settles(low: float, high: float) -> bool:
        deadline = time.monotonic() + 15  # the child rereads the file every CACHE_SECONDS
        while time.monotonic() < deadline:
            if low < rate() < high:
                return True
        return False

    try:
        assert settles(0.8, 1.25)
        clocks.write(control, 4.0)
        assert settles(3.0, 5.0)
        clocks.write(control, 0.25)
        assert settles(0.15, 0.35)
    finally:
        proc.kill()
        proc.communicate()


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
            assert await cluster.set_clock("n1", 0.5)
            assert not await cluster.set_clock("n1", 0.5)  # no change
            assert control.read_text() == "+0 x0.5\n" and cluster.skewed() == ["n1"]
            await cluster.restart("n1")  # a new life keeps its clock
            assert psutil.Process(cluster.pids()["n1"]).environ()["FAKETIME_TIMESTAMP_FILE"] == (
                str(control))
            assert control.read_text() == "+0 x0.5\n"
            assert await cluster.set_clock("n1", 1.0) and cluster.skewed() == []
        async with Cluster(create_run(tmp_path, "plain"), ["n1", "n2"],
                           target=FAKE_NODE) as plain:  # fmt: skip
            assert "FAKETIME_TIMESTAMP_FILE" not in psutil.Process(plain.pids()["n1"]).environ()
            with pytest.raises(ValueError, match="without clock faults"):
                await plain.set_clock("n1", 2.0)

    asyncio.run(main())

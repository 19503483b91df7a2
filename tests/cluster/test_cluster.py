"""Cluster with stand-in nodes: ports, proxies in the path, partitions, process verbs, teardown."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import psutil
import pytest

from splitbrain.cluster.cluster import Cluster
from splitbrain.cluster.faults import LinkFaults
from splitbrain.cluster.process import NodeError, gone
from splitbrain.cluster.targets import NodeLaunch
from splitbrain.store import RunDir, create_run
from splitbrain.targets.target import Command
from tests.cluster.driver import FAKE_NODE

pytestmark = pytest.mark.timeout(60)
DRIVER = str(Path(__file__).with_name("driver.py"))
NODES = ["n1", "n2", "n3"]


@pytest.fixture
def run(tmp_path: Path) -> RunDir:
    return create_run(tmp_path, "test")


async def received(cluster: Cluster, node: str) -> dict[str, int]:
    """How many numbered frames `node` has received from each sender."""
    reader, writer = await asyncio.open_connection(*cluster.client_addresses[node])
    try:
        writer.write(b"stats\n")
        seqs = json.loads(await reader.readline())["seqs"]
    finally:
        writer.close()
    return {sender: len(s) for sender, s in seqs.items()}


async def eventually(cond: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def flowing(cluster: Cluster, src: str, dst: str, window: float = 0.0) -> bool:
    """Do frames from src reach dst now (more arrive over a short interval)?"""
    before = (await received(cluster, dst)).get(src, 0)
    await asyncio.sleep(window or 0.15)
    return (await received(cluster, dst)).get(src, 0) > before


def all_gone(pids: list[int], timeout: float = 10.0) -> bool:
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            procs.append(psutil.Process(pid))
    psutil.wait_procs(procs, timeout=timeout)  # reaps only our own children; others: poll
    return all(gone(pid) for pid in pids)


def test_every_message_goes_through_the_link_proxies_and_a_grudge_cuts_them(run: RunDir) -> None:
    async def main() -> None:
        async with Cluster(run, NODES, target=FAKE_NODE) as cluster:
            for src in NODES:
                for dst in NODES:
                    if src != dst:
                        await eventually(lambda s=src, d=dst: flowing(cluster, s, d))
            stats = await cluster.network.stats()
            assert set(stats) == {(s, d) for s in NODES for d in NODES if s != d}
            assert all(st["delivered"] > 0 for st in stats.values())

            # Isolate n1 (both directions), and a one-way cut n3 -> n2 on top of it.
            cut = await cluster.network.apply_grudge(
                {"n1": ["n2", "n3"], "n2": ["n1", "n3"], "n3": ["n1"]}
            )
            assert ("n3", "n2") in cut and ("n2", "n3") not in cut
            assert not await flowing(cluster, "n1", "n2", 0.3)
            assert not await flowing(cluster, "n2", "n1", 0.3)
            assert not await flowing(cluster, "n3", "n2", 0.3)
            assert await flowing(cluster, "n2", "n3", 0.3)

            await cluster.network.heal()
            for src, dst in [("n1", "n2"), ("n2", "n1"), ("n3", "n2")]:
                await eventually(lambda s=src, d=dst: flowing(cluster, s, d))

    asyncio.run(main())


def test_a_stalling_grudge_holds_a_link_without_cutting_its_connection(run: RunDir) -> None:
    async def main() -> None:
        async with Cluster(run, NODES, target=FAKE_NODE) as cluster:
            await eventually(lambda: flowing(cluster, "n1", "n2"))
            before = (await cluster.network.stats())[("n1", "n2")]
            assert await cluster.network.apply_grudge({"n2": ["n1"]}, stall=True) == {
                ("n1", "n2")}
            assert not await flowing(cluster, "n1", "n2", 0.3)
            assert await flowing(cluster, "n1", "n3", 0.3)
            await cluster.network.heal()
            await eventually(lambda: flowing(cluster, "n1", "n2"))
            after = (await cluster.network.stats())[("n1", "n2")]
            assert after["cut_connections"] == before["cut_connections"] == 0
            assert after["connections"] == before["connections"]  # the same one carried on
            assert after["blackholed"] == 0

    asyncio.run(main())


def test_link_faults_reach_the_proxy_process(run: RunDir) -> None:
    async def main() -> None:
        async with Cluster(run, NODES, target=FAKE_NODE, seed=7) as cluster:
            await cluster.network.set_link_faults([("n1", "n2")], LinkFaults(drop=1.0))
            assert cluster.network.faults == {("n1", "n2"): LinkFaults(drop=1.0)}
            await eventually(lambda: _dropped(cluster, ("n1", "n2")))
            assert not await flowing(cluster, "n1", "n2", 0.3)
            assert await flowing(cluster, "n1", "n3", 0.3)
            await cluster.network.clear_link_faults()
            await eventually(lambda: flowing(cluster, "n1", "n2"))
            with pytest.raises(ValueError, match="no link n1->n9"):
                await cluster.network.set_link_faults([("n1", "n9")], LinkFaults(drop=0.1))
            with pytest.raises(ValueError, match="unknown node 'n9'"):
                await cluster.network.apply_grudge({"n9": ["n1"]})

    asyncio.run(main())


async def _dropped(cluster: Cluster, link: tuple[str, str]) -> bool:
    return (await cluster.network.stats())[link]["dropped"] > 0


def test_kill_pause_resume_start_restart(run: RunDir) -> None:
    async def main() -> None:
        async with Cluster(run, NODES, target=FAKE_NODE) as cluster:
            pid = cluster.pids()["n2"]
            assert await cluster.pause("n2") and cluster.paused("n2")
            assert psutil.Process(pid).status() == psutil.STATUS_STOPPED
            assert not await cluster.pause("n2")  # already paused: nothing done
            assert await cluster.resume("n2") and not cluster.paused("n2")
            assert psutil.Process(pid).status() != psutil.STATUS_STOPPED

            assert await cluster.pause("n2")
            assert await cluster.kill("n2")  # a paused node can be killed
            assert not cluster.alive("n2") and not cluster.paused("n2") and gone(pid)
            assert not await cluster.kill("n2") and not await cluster.resume("n2")
            assert await cluster.start("n2") and cluster.alive("n2")
            assert not await cluster.start("n2")  # already running
            await eventually(lambda: flowing(cluster, "n2", "n1"))

            old = cluster.pids()["n3"]
            await cluster.restart("n3")
            assert cluster.pids()["n3"] != old and gone(old)
            starts = run.node_events("n3").read_text().splitlines()
            assert len(starts) == 2  # one start event per process life, same events file
            with pytest.raises(ValueError, match="unknown node 'n7'"):
                await cluster.kill("n7")

    asyncio.run(main())


def test_no_file_descriptor_outlives_the_cluster(run: RunDir) -> None:
    async def main() -> None:
        async with Cluster(run, NODES, target=FAKE_NODE) as cluster:
            for _ in range(3):
                await cluster.restart("n1")
            await cluster.network.apply_grudge({"n1": ["n2"]})

    asyncio.run(main())  # warm up: imports and lazily created resources
    before = psutil.Process().num_fds()
    asyncio.run(main())
    assert psutil.Process().num_fds() == before


def test_teardown_runs_on_exception_and_leaves_no_process(run: RunDir) -> None:
    pids: list[int] = []

    async def main() -> None:
        async with Cluster(run, NODES, target=FAKE_NODE) as cluster:
            await cluster.pause("n1")  # a stopped process must not survive teardown either
            pids.extend(cluster.pids().values())
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(main())
    assert len(pids) == 4 and all_gone(pids)


def test_a_node_that_cannot_start_is_reported_and_nothing_is_left(run: RunDir) -> None:
    def command(launch: NodeLaunch) -> Command:
        return Command((sys.executable, "-c", "import sys; print('no such flag'); sys.exit(3)"))

    broken = dataclasses.replace(FAKE_NODE, command=command)

    async def main() -> None:
        async with Cluster(run, NODES, target=broken):
            pass

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(NodeError, match=r"exited with 3 while starting.*no such flag"):
        asyncio.run(main())
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before


def test_bad_node_names_are_refused(run: RunDir) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Cluster(run, ["n1", "n1"])
    with pytest.raises(ValueError, match="bad node name"):
        Cluster(run, ["n1", "a=b"])


@pytest.fixture
def driver(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Start driver.py; yields (process, child pids); kills whatever is left afterwards."""
    procs: list[subprocess.Popen[str]] = []
    children: list[int] = []

    def start(kind: str = "fake", nodes: int = 3) -> tuple[subprocess.Popen[str], dict[str, int]]:
        p = subprocess.Popen(
            [sys.executable, DRIVER, str(tmp_path), kind, str(nodes)],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(p)
        assert p.stdout is not None
        line = p.stdout.readline()  # bounded by the test timeout; the driver prints or dies
        pids = json.loads(line)["pids"]
        children.extend(pids.values())
        return p, pids

    yield start
    for p in procs:
        p.kill()
        p.communicate()  # reaps it and closes its stdout pipe
    for pid in children:
        if not gone(pid):
            psutil.Process(pid).kill()


@pytest.mark.parametrize("kind", ["fake", pytest.param("raft", marks=pytest.mark.slow)])
def test_driver_killed_with_sigkill_leaves_no_node_or_proxy(driver, kind: str) -> None:  # type: ignore[no-untyped-def]
    proc, pids = driver(kind)
    assert set(pids) == {"n1", "n2", "n3", "proxies"}
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert all_gone(list(pids.values()))


def test_driver_sigterm_runs_teardown(driver) -> None:  # type: ignore[no-untyped-def]
    proc, pids = driver()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert "closed" in out  # the finally ran: teardown, not just the lifeline
    assert all_gone(list(pids.values()))

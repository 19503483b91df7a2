"""netns mode: a namespace per node, partitions as nftables rules, nothing left behind.

Stand-in nodes (fake_node.py) send numbered frames to every peer on their own outbound
connection, so "src's frames reach dst" is exactly the directed link src -> dst. Needs root
(CI runs as root); skipped with the reason otherwise.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from splitbrain.cluster import netns
from splitbrain.cluster.cluster import Cluster
from splitbrain.cluster.faults import LinkFaults
from splitbrain.cluster.network import grudge_links
from splitbrain.nemesis.schedule import PARTITIONS, partition
from splitbrain.store import create_run
from tests.cluster.driver import FAKE_NODE
from tests.cluster.test_cluster import DRIVER, all_gone, eventually, flowing
from tests.netns import leftovers, needs_netns

pytestmark = [needs_netns, pytest.mark.timeout(120)]
NODES = ["n1", "n2", "n3", "n4", "n5"]
PAIRS = [(s, d) for s in NODES for d in NODES if s != d]


async def flows(cluster: Cluster, window: float = 0.5) -> dict[tuple[str, str], bool]:
    """Which directed pairs carry frames now, all probed at once."""
    seen = await asyncio.gather(*(flowing(cluster, s, d, window) for s, d in PAIRS))
    return dict(zip(PAIRS, seen, strict=True))


async def all_flowing(cluster: Cluster) -> bool:
    return all((await flows(cluster, 0.15)).values())


@pytest.mark.slow
def test_each_partition_shape_cuts_exactly_its_directed_pairs(tmp_path: Path) -> None:
    async def main() -> None:
        run = create_run(tmp_path, "netns")
        async with Cluster(run, NODES, target=FAKE_NODE, network="netns") as cluster:
            assert cluster.client_addresses["n3"] == ("10.77.0.3", 2379)
            for kind in PARTITIONS:
                grudge = partition(kind, NODES, random.Random(kind))
                claimed = grudge_links(grudge, NODES)
                assert await cluster.network.apply_grudge(grudge) == claimed
                await asyncio.sleep(0.2)  # frames already in flight arrive
                cut = {pair for pair, flowing_ in (await flows(cluster)).items()
                       if not flowing_}  # fmt: skip
                assert cut == claimed, kind
                await cluster.network.heal()
                await eventually(lambda: all_flowing(cluster), 20)  # stalled connections
                # resume when TCP retransmits

            await cluster.network.set_link_faults([("n1", "n2")], LinkFaults(drop=1.0))
            await asyncio.sleep(0.2)
            assert not await flowing(cluster, "n1", "n2", 0.5)
            assert await flowing(cluster, "n1", "n3", 0.5)
            with pytest.raises(ValueError, match="can only drop packets, not delay"):
                await cluster.network.set_link_faults([("n1", "n2")], LinkFaults(delay=0.1))
            await cluster.network.clear_link_faults()
            await eventually(lambda: flowing(cluster, "n1", "n2"), 20)

    asyncio.run(main())


def test_teardown_removes_every_namespace_link_and_table(tmp_path: Path) -> None:
    rid = ""

    async def main() -> None:
        nonlocal rid
        run = create_run(tmp_path, "netns")
        async with Cluster(run, NODES[:3], target=FAKE_NODE, network="netns") as cluster:
            rid = cluster.network.namespaces.rid  # type: ignore[union-attr]
            assert leftovers(rid)["namespaces"]
            await cluster.pause("n2")

    asyncio.run(main())
    assert leftovers(rid) == {"namespaces": [], "links": [], "tables": [], "processes": []}


def test_driver_killed_with_sigkill_leaves_no_namespace_link_table_or_process(
        tmp_path: Path) -> None:  # fmt: skip
    proc = subprocess.Popen([sys.executable, DRIVER, str(tmp_path), "fake", "3", "netns"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        up = json.loads(proc.stdout.readline())
        rid = netns.NAME.match(up["netns"][0]).group(1)  # type: ignore[union-attr]
        assert set(up["pids"]) == {"n1", "n2", "n3", "keeper"}
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert all_gone(list(up["pids"].values()))
        deadline = time.monotonic() + 20
        while any(leftovers(rid).values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        logs = "".join(p.read_text() for p in tmp_path.glob("*/network.log"))
        left = leftovers(rid)
        assert left == {"namespaces": [], "links": [], "tables": [], "processes": []}, logs
        assert f"keeper {rid}: swept" in logs
    finally:
        proc.kill()
        proc.communicate()


EARLY_DRIVER = """
import asyncio, sys
from splitbrain.cluster import netns
from splitbrain.cluster.lifeline import Lifeline

async def main():
    ns = await netns.Namespaces.create(["n1"], Lifeline())
    print(ns.rid, ns.keeper.pid, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def test_driver_killed_while_its_keeper_starts_is_still_swept() -> None:
    """The driver dies (parent-death SIGTERM to the keeper) before the keeper's Python is up:
    the signal waits, blocked, for the keeper's handler instead of killing it unswept."""
    proc = subprocess.Popen([sys.executable, "-c", EARLY_DRIVER], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        rid, keeper = proc.stdout.readline().split()
        proc.kill()
        proc.wait(10)
        assert all_gone([int(keeper)], timeout=20)
        assert leftovers(rid) == {"namespaces": [], "links": [], "tables": [], "processes": []}
    finally:
        proc.kill()
        proc.communicate()


def test_a_sweeper_probing_a_lock_is_not_taken_for_its_driver() -> None:
    """Sweepers probe locks while other sweepers (keepers, new runs, `clean`) do the same: a
    probe in progress must not look like a live driver, or a dead run is left unswept."""
    netns.LOCK_DIR.mkdir(parents=True, exist_ok=True)
    rid = "f" + "0" * 5
    path = netns.LOCK_DIR / f"{rid}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # another sweeper's probe, caught in the act
        assert not netns.driver_alive(rid)
        fcntl.flock(fd, fcntl.LOCK_EX)  # a driver's lock
        assert netns.driver_alive(rid)
    finally:
        os.close(fd)
        path.unlink()
    assert not netns.driver_alive(rid)


ORPHANING_DRIVER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, f"{os.getpid()}\\n".encode())
child = os.fork()
if child == 0:  # hangs before it would exec, holding the lock
    os.closerange(0, fd), os.closerange(fd + 1, 1024)
    time.sleep(60)
else:
    print(child, flush=True)
"""


def test_a_lock_held_only_by_an_orphan_of_a_dead_driver_is_no_driver() -> None:
    """A child forked by the driver holds the lock until it execs, and for ever if it hangs
    first: once the pid written in the lock is gone, the run is swept all the same."""
    netns.LOCK_DIR.mkdir(parents=True, exist_ok=True)
    rid = "f" + "1" * 5
    path = netns.LOCK_DIR / f"{rid}.lock"
    driver = subprocess.run([sys.executable, "-c", ORPHANING_DRIVER, str(path)],
                            capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
    orphan = int(driver.stdout)
    try:
        with pytest.raises(BlockingIOError):  # the orphan still holds the driver's lock
            fd = os.open(path, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            finally:
                os.close(fd)
        assert not netns.driver_alive(rid)
    finally:
        os.kill(orphan, signal.SIGKILL)
        path.unlink()


def test_clean_sweeps_namespaces_whose_driver_is_gone_and_keeps_live_ones() -> None:
    ip = netns.tool("ip")
    assert ip
    dead, live = "d" + "0" * 5, "e" + "0" * 5
    holder = None
    try:
        for rid in (dead, live):
            subprocess.run([ip, "netns", "add", f"sb-{rid}-n1"], check=True)
        netns.LOCK_DIR.mkdir(parents=True, exist_ok=True)
        (netns.LOCK_DIR / f"{dead}.lock").write_text("")  # its driver died: nobody holds it
        holder = subprocess.Popen(  # a live driver holds its lock
            [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'w'); "
             "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)",
             str(netns.LOCK_DIR / f"{live}.lock")], stdout=subprocess.PIPE, text=True)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        out = subprocess.run([sys.executable, "-m", "splitbrain", "clean"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert f"sb-{dead}-n1" in out.stdout
        assert not leftovers(dead)["namespaces"]
        assert not (netns.LOCK_DIR / f"{dead}.lock").exists()
        assert leftovers(live)["namespaces"] == [f"sb-{live}-n1"]
    finally:
        if holder is not None:
            holder.kill()
            holder.communicate()
        for rid in (dead, live):
            subprocess.run([ip, "netns", "del", f"sb-{rid}-n1"], capture_output=True)
            (netns.LOCK_DIR / f"{rid}.lock").unlink(missing_ok=True)

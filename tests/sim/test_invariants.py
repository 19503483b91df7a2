"""The sim-only invariants see the durable bytes of the disks and the order of applies and reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from splitbrain.raft.messages import Entry, EntryType, HardState
from splitbrain.raft.wal import WAL
from splitbrain.sim.disk import DiskFiles, SimDisk
from splitbrain.sim.invariants import Invariants
from splitbrain.sim.loop import SimLoop

NODES = ("n1", "n2", "n3")
WAL_DIR = Path("data")


def entries(term, first, last):
    return [Entry(term, i, EntryType.NORMAL, b"x") for i in range(first, last + 1)]


@pytest.fixture
def loop():
    loop = SimLoop()
    yield loop
    loop.close()


def setup(loop, fsync=True):
    disks = {n: SimDisk() for n in NODES}
    wals = {}
    for n in NODES:
        files = DiskFiles(disks[n], loop.process(n), appends=lambda p: None)  # no events here
        wals[n] = WAL.open(WAL_DIR, fsync=fsync, files=files)[0]
    invariants = Invariants(disks, lambda n: WAL_DIR / "raft.wal", lambda: 7, lambda: 0.5)
    return wals, invariants


def test_an_entry_applied_before_a_majority_fsynced_it_is_a_violation(loop):
    wals, inv = setup(loop)
    wals["n1"].save(HardState(1, "n1", 0), entries(1, 1, 2))
    inv.applying("n1", entries(1, 1, 1))  # only n1 holds it
    wals["n2"].save(HardState(1, "n1", 0), entries(1, 1, 2))
    inv.applying("n2", entries(1, 1, 2))  # n1 and n2: a majority of 3
    inv.applying("n3", entries(2, 2, 2))  # the durable entry 2 has term 1, not 2
    results = inv.results()["durable-before-apply"]
    assert results["valid"] is False and results["checked"] == 4
    assert [(v["node"], v["index"], v["durable_on"]) for v in results["violations"]] == [
        ("n1", 1, ["n1"]), ("n3", 2, [])]
    assert results["violations"][0]["time"] == 7 and results["violations"][0]["at"] == 0.5


def test_what_was_written_but_not_fsynced_does_not_count(loop):
    wals, inv = setup(loop, fsync=False)  # like --no-fsync: only the page cache
    for n in NODES:
        wals[n].save(HardState(1, "n1", 0), entries(1, 1, 1))
    inv.applying("n1", entries(1, 1, 1))
    assert inv.results()["durable-before-apply"]["valid"] is False


def test_a_read_served_below_an_index_applied_before_it_arrived_is_a_violation(loop):
    wals, inv = setup(loop)
    for n in NODES:
        wals[n].save(HardState(1, "n1", 0), entries(1, 1, 5))
    early = inv.read_asked("n2")  # nothing applied yet
    inv.applying("n1", entries(1, 1, 5))
    late = inv.read_asked("n2")
    inv.read_served("n2", early, 0)  # fine: nothing was applied when it arrived
    inv.read_served("n2", late, 5)
    inv.read_served("n2", late, 3)  # stale: 5 was applied on n1 before this read arrived
    results = inv.results()
    assert results["durable-before-apply"]["valid"] is True
    reads = results["read-sees-applied"]
    assert reads["valid"] is False and reads["checked"] == 3
    assert [(v["node"], v["index"], v["needed"]) for v in reads["violations"]] == [("n2", 3, 5)]

"""The sim-only invariants see the durable bytes of the disks and the order of applies and reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from splitbrain.raft.messages import Entry, EntryType, HardState, Message, MessageType
from splitbrain.raft.wal import WAL
from splitbrain.sim.disk import DiskFiles, SimDisk
from splitbrain.sim.invariants import Invariants
from splitbrain.sim.loop import SimLoop

NODES = ("n1", "n2", "n3")
WAL_DIR = Path("data")


APP_RESP, VOTE_RESP = MessageType.APP_RESP, MessageType.VOTE_RESP


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


def test_committing_or_applying_beyond_what_a_leader_committed_is_a_violation(loop):
    wals, inv = setup(loop)
    for n in NODES:
        wals[n].save(HardState(1, "n1", 0), entries(1, 1, 4))
    inv.committing("n1", 2, leader=True)
    inv.committing("n2", 2, leader=False)  # learned from the leader: fine
    inv.applying("n2", entries(1, 1, 2))
    inv.committing("n3", 4, leader=False)  # its whole log, where the leader committed 2
    inv.applying("n3", entries(1, 1, 3))
    inv.committing("n1", 4, leader=True)  # the leader decides: now 4 may be committed
    inv.applying("n3", entries(1, 4, 4))
    results = inv.results()["commit-by-leader"]
    assert results["valid"] is False and results["checked"] == 5
    assert [(v["node"], v["index"], v["leader_commit"]) for v in results["violations"]] == [
        ("n3", 4, 2), ("n3", 3, 2)]
    assert results["violations"][0]["message"] == (
        "n3 commits up to index 4, but no leader has committed beyond index 2")


def violations(inv, kind):
    result = inv.results()[kind]
    return result["checked"], [v["message"] for v in result.get("violations", [])]


def test_an_ack_or_a_vote_that_the_disk_does_not_hold_durably_is_a_violation(loop):
    wals, inv = setup(loop)
    wals["n2"].save(HardState(2, "n1", 0), entries(2, 1, 3))
    inv.promised("n2", Message(APP_RESP, "n2", "n1", 2, index=3))  # held: fine
    inv.promised("n2", Message(VOTE_RESP, "n2", "n1", 2))  # its durable vote: fine
    inv.promised("n2", Message(APP_RESP, "n2", "n1", 2, index=4))  # entry 4 is not on disk
    inv.promised("n2", Message(APP_RESP, "n2", "n1", 2, index=9, reject=True))  # no promise
    inv.promised("n2", Message(APP_RESP, "n2", "n1", 1, index=9))  # older term: excused
    inv.promised("n3", Message(VOTE_RESP, "n3", "n1", 2))  # n3's disk holds no vote
    wals["n3"].save(HardState(2, None, 0), ())
    inv.promised("n3", Message(VOTE_RESP, "n3", "n1", 2))  # a new term, but no vote in it
    checked, found = violations(inv, "durable-promise")
    assert checked == 6
    assert found == ["n2 acknowledges index 4 to n1 (term 2) holding entries up to 3 durably",
                     "n3 votes for n1 in term 2 while its disk holds term 0 vote None",
                     "n3 votes for n1 in term 2 while its disk holds term 2 vote None"]


def test_what_a_wal_wrote_without_fsync_backs_no_promise(loop):
    wals, inv = setup(loop, fsync=False)
    wals["n1"].save(HardState(1, "n2", 0), entries(1, 1, 1))
    inv.promised("n1", Message(VOTE_RESP, "n1", "n2", 1))
    inv.promised("n1", Message(APP_RESP, "n1", "n2", 1, index=1))
    assert len(violations(inv, "durable-promise")[1]) == 2


def test_a_second_vote_in_a_term_is_a_violation_even_after_a_restart(loop):
    wals, inv = setup(loop)
    wals["n1"].save(HardState(3, "n2", 0), ())
    inv.promised("n1", Message(VOTE_RESP, "n1", "n2", 3))
    inv.promised("n1", Message(VOTE_RESP, "n1", "n2", 3))  # the same vote again: fine
    inv.promised("n1", Message(VOTE_RESP, "n1", "n3", 3, reject=True))  # refused: fine
    inv.promised("n1", Message(VOTE_RESP, "n1", "n3", 4))  # another term: fine
    inv.promised("n1", Message(VOTE_RESP, "n1", "n3", 3))
    checked, found = violations(inv, "one-vote-per-term")
    assert checked == 4 and found == ["n1 votes for n3 in term 3 after voting for n2 in it"]


def test_a_recovery_that_differs_from_the_records_on_disk_is_a_violation(loop):
    wals, inv = setup(loop)
    wal = wals["n1"]
    wal.save(HardState(1, None, 0), entries(1, 1, 4))
    wal.save(HardState(2, "n2", 1), [])  # a vote in a term it knew: the last record wins
    wal.save(None, entries(2, 3, 3))  # replaces entries 3 and 4 (unsynced: the page cache)
    on_disk = entries(1, 1, 2) + entries(2, 3, 3)
    inv.recovered("n1", HardState(2, "n2", 1), on_disk)  # exactly what the disk holds
    inv.recovered("n2", HardState(), [])  # an empty disk: nothing to recover
    inv.recovered("n1", HardState(2, None, 1), on_disk)  # forgot the vote
    inv.recovered("n1", HardState(2, "n2", 1), entries(1, 1, 4))  # undid the replacement
    checked, found = violations(inv, "recovery-complete")
    assert checked == 4
    assert found == ["n1 recovers term 2 vote None where its disk holds term 2 vote n2",
                     "n1 recovers 4 entries where its disk holds 3, first differing at index 3"]


def test_replacing_an_entry_acknowledged_in_the_same_term_is_a_violation(loop):
    wals, inv = setup(loop)
    wal = wals["n2"]
    wal.save(HardState(1, None, 0), entries(1, 1, 3))
    wal.save(HardState(2, None, 0), entries(2, 3, 5))  # term 2's leader replaces entry 3: fine
    inv.promised("n2", Message(APP_RESP, "n2", "n1", 2, index=5))
    wal.save(None, entries(2, 5, 6))  # term 2's leader rewrites acknowledged entry 5
    inv.promised("n2", Message(APP_RESP, "n2", "n1", 2, index=6))
    wal.save(HardState(3, None, 0), entries(3, 4, 4))  # term 3's leader may replace it
    inv.applying("n2", ())
    checked, found = violations(inv, "acked-entry-kept")
    assert checked == 3
    assert found == ["n2 replaces its log from index 5 in term 2, after acknowledging index 5 "
                     "to the leader of that term"]


def test_a_leader_without_an_entry_committed_before_its_term_is_a_violation(loop):
    wals, inv = setup(loop)
    for n in NODES:
        wals[n].save(HardState(2, "n1", 0), entries(2, 1, 3))
    log = {1: 2, 2: 2, 3: 2}
    inv.leading("n1", 2, log.get)
    inv.applying("n1", entries(2, 1, 3))  # committed while the highest elected term was 2
    inv.leading("n3", 2, {1: 2}.get)  # an old message of term 2: no term above the commit
    inv.leading("n2", 3, log.get)  # holds them all: fine
    inv.leading("n3", 4, {1: 2, 2: 2, 3: 1}.get)
    inv.leading("n3", 5, {1: 2}.get)
    checked, found = violations(inv, "leader-complete")
    assert checked == 5
    assert found == ["n3 leads term 4 without committed entry 3 (term 2): its log has term 1 there",
                     "n3 leads term 5 without committed entry 2 (term 2): its log has none there"]


def test_an_entry_is_required_only_of_leaders_above_every_term_durable_when_it_was_applied(loop):
    wals, inv = setup(loop)
    for n in NODES:
        wals[n].save(HardState(2, "n1", 0), entries(2, 1, 1))
    wals["n3"].save(HardState(4, "n3", 0), ())  # term 4 is durable: it may have committed it
    inv.applying("n1", entries(2, 1, 1))
    inv.leading("n2", 4, {}.get)  # a term-4 leader need not hold it
    inv.leading("n2", 5, {}.get)
    checked, found = violations(inv, "leader-complete")
    assert checked == 2
    assert found == ["n2 leads term 5 without committed entry 1 (term 2): its log has none there"]


def test_a_record_whose_last_zero_bytes_were_never_stored_is_whole_as_recovery_reads_it(loop):
    wals, inv = setup(loop)
    wals["n1"].save(HardState(1, "n1", 0), entries(1, 1, 1))
    wals["n1"].save(None, [Entry(1, 2, EntryType.NOOP)])  # ends with zero bytes: its empty data
    f = next(iter(inv._durable["n1"]._disk.files.values()))
    while f.data[-1] == 0:  # a torn write that lost only those zeros: the file reads the same
        del f.data[-1]
        del f.durable[-1]
    files = DiskFiles(inv._durable["n1"]._disk, loop.process("n1-again"), appends=lambda p: None)
    _, recovered = WAL.open(WAL_DIR, files=files)
    assert [e.index for e in recovered.entries] == [1, 2]
    inv.recovered("n1", recovered.hard_state, recovered.entries)
    inv.promised("n1", Message(APP_RESP, "n1", "n2", 1, index=2))
    assert violations(inv, "recovery-complete") == (1, [])
    assert violations(inv, "durable-promise") == (1, [])

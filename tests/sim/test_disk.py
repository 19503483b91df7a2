"""The simulated disk: kill -9 keeps the page cache, a power loss keeps only what was fsynced."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from splitbrain.raft.messages import Entry, EntryType, HardState
from splitbrain.raft.wal import WAL
from splitbrain.sim.disk import DiskFiles, SimDisk, SimFile
from splitbrain.sim.loop import SimLoop

DATA = Path("nodes/n1/data")


def entries(term, first, last):
    return [Entry(term, i, EntryType.NORMAL, f"cmd{i}".encode()) for i in range(first, last + 1)]


def indexes(fs: DiskFiles, directory: Path = DATA, *, fsync: bool = True) -> list[int]:
    """The indexes of the entries the WAL in `directory` recovers."""
    return [e.index for e in WAL.open(directory, fsync=fsync, files=fs)[1].entries]


def files(disk: SimDisk, loop: SimLoop, tmp_path: Path):
    proc = loop.process("n1")
    return proc, DiskFiles(disk, proc, lambda p: OPEN.setdefault(p, (tmp_path / p.name).open("a")))


OPEN: dict = {}


@pytest.fixture(autouse=True)
def close_real_files():
    yield
    for f in OPEN.values():
        f.close()
    OPEN.clear()


def test_a_power_loss_drops_what_was_not_fsynced():
    f = SimFile()
    f.pwrite(b"synced", 0)
    f.sync()
    f.pwrite(b"-lost", 6)
    assert f.read() == b"synced-lost"
    f.power_loss()
    assert f.read() == b"synced"


def test_zeros_beyond_the_end_are_not_stored_but_read_back():
    f = SimFile()
    f.pwrite(b"abc", 0)
    f.pwrite(bytes(8 << 20), 3)  # the WAL preallocates like this
    assert len(f.data) == 3 and f.size == 3 + (8 << 20)
    assert f.read() == b"abc" + bytes(8 << 20)


def test_a_truncation_is_undone_by_a_power_loss_until_it_is_synced():
    """As ftruncate: the new size is in the page cache, durable with the next fsync; once
    durable, bytes written past it later read back as zeros, not as what was cut."""
    f = SimFile()
    f.pwrite(b"0123456789", 0)
    f.sync()
    f.truncate(4)
    assert f.read() == b"0123"
    f.power_loss()
    assert f.read() == b"0123456789"
    f.truncate(4)
    f.sync()
    f.truncate(10)  # grown again: zeros, in the cache and once synced
    f.sync()
    f.power_loss()
    assert f.read() == b"0123" + bytes(6)


def test_the_wal_survives_a_kill_with_its_page_cache_and_a_power_loss_with_its_fsyncs(tmp_path):
    loop = SimLoop()
    disk = SimDisk()
    proc, fs = files(disk, loop, tmp_path)
    wal, _ = WAL.open(DATA, files=fs)
    wal.save(HardState(1, "n1", 0), entries(1, 1, 3))  # fsynced
    nosync, _ = WAL.open(Path("other"), fsync=False, files=fs)
    nosync.save(HardState(1, "n1", 0), entries(1, 1, 3))  # in the page cache only
    proc.kill()  # kill -9: nothing lost, and a dead process writes nothing more
    wal.save(None, entries(1, 4, 4))
    _, fs2 = files(disk, loop, tmp_path)
    assert indexes(fs2) == [1, 2, 3]
    assert indexes(fs2, Path("other"), fsync=False) == [1, 2, 3]
    disk.power_loss()
    assert indexes(fs2) == [1, 2, 3]
    assert indexes(fs2, Path("other")) == []
    loop.close()


def test_a_full_disk_refuses_writes_growth_and_new_files_and_keeps_what_it_holds(tmp_path):
    loop = SimLoop()
    disk = SimDisk()
    _, fs = files(disk, loop, tmp_path)
    wal, _ = WAL.open(DATA, files=fs)
    wal.save(HardState(1, "n1", 0), entries(1, 1, 2))
    disk.full = True
    with pytest.raises(OSError) as refused:
        wal.save(None, entries(1, 3, 3))
    assert refused.value.errno == errno.ENOSPC
    f = fs.open(DATA / "raft.wal")
    for attempt in (lambda: f.pwrite(b"x", 0), lambda: f.truncate(len(f.read()) + 1),
                    lambda: fs.open(DATA / "new")):  # fmt: skip
        with pytest.raises(OSError, match="No space left"):
            attempt()
    f.fsync()  # a sync writes nothing new: it succeeds
    assert not fs.exists(DATA / "new")
    assert indexes(fs) == [1, 2]  # what it held reads back
    disk.full = False
    wal, _ = WAL.open(DATA, files=fs)
    wal.save(None, entries(1, 3, 3))
    assert indexes(fs) == [1, 2, 3]
    loop.close()


def test_recovery_makes_what_a_killed_process_left_unsynced_durable(tmp_path):
    # The next life reads the page cache as if it were the disk: unless recovery syncs it, a
    # power loss takes back entries it has since acknowledged or applied.
    loop = SimLoop()
    disk = SimDisk()
    proc, fs = files(disk, loop, tmp_path)
    wal, _ = WAL.open(DATA, files=fs)
    wal.save(HardState(1, "n1", 0), entries(1, 1, 1))
    wal.write_unsynced(None, entries(1, 2, 3))  # killed between the write and its fsync
    proc.kill()
    _, fs2 = files(disk, loop, tmp_path)
    assert indexes(fs2) == [1, 2, 3]
    disk.power_loss()
    assert indexes(fs2) == [1, 2, 3]
    loop.close()


def test_appended_text_stops_when_its_process_dies(tmp_path):
    loop = SimLoop()
    proc, fs = files(SimDisk(), loop, tmp_path)
    f = fs.append(Path("events.jsonl"))
    f.write("one\n")
    f.flush()
    proc.kill()
    f.write("two\n")
    f.flush()
    assert (tmp_path / "events.jsonl").read_text() == "one\n"
    loop.close()


def test_written_out_files_hold_the_page_cache(tmp_path):
    loop = SimLoop()
    disk = SimDisk()
    _, fs = files(disk, loop, tmp_path)
    wal, _ = WAL.open(DATA, files=fs)
    wal.save(HardState(2, "n1", 1), entries(2, 1, 2))
    disk.write_out(tmp_path)
    out = tmp_path / DATA / "raft.wal"
    assert out.stat().st_size == 8 << 20  # the stored bytes, then the preallocated zeros
    assert out.stat().st_blocks * 512 < 1 << 20  # ... as a hole
    wal, recovered = WAL.open(tmp_path / DATA)
    wal.close()
    assert recovered.hard_state == HardState(2, "n1", 1) and len(recovered.entries) == 2
    loop.close()

"""Durable storage: round trips, replaced suffixes, recovery from a torn tail at every byte."""

import os

import pytest

from splitbrain.raft.messages import Entry, EntryType, HardState
from splitbrain.raft.wal import FILE_NAME, WAL, WALError


@pytest.fixture(autouse=True)
def small_preallocation(monkeypatch):
    monkeypatch.setattr("splitbrain.raft.wal.PREALLOCATE", 4096)  # keeps these tests fast


def entries(term, first, last):
    return [Entry(term, i, EntryType.NORMAL, f"cmd{i}".encode()) for i in range(first, last + 1)]


def test_empty_directory_recovers_nothing(tmp_path):
    wal, rec = WAL.open(tmp_path / "d")
    wal.close()
    assert rec.hard_state == HardState() and rec.entries == [] and rec.truncated_bytes == 0


def test_saved_state_survives_reopen(tmp_path):
    wal, _ = WAL.open(tmp_path)
    wal.save(HardState(1, "n1", 0), [Entry(1, 1, EntryType.NOOP)])
    wal.save(HardState(1, "n1", 3), entries(1, 2, 3))
    wal.save(None, entries(1, 4, 4))
    wal.save(HardState(1, "n1", 4), [])  # a commit-only change waits for the next entries
    wal.close()
    _, rec = WAL.open(tmp_path)
    assert rec.hard_state == HardState(1, "n1", 3)
    assert [e.index for e in rec.entries] == [1, 2, 3, 4]
    wal, _ = WAL.open(tmp_path)
    wal.save(HardState(1, "n1", 4), [])
    wal.save(None, entries(1, 5, 5))
    wal.close()
    wal, rec = WAL.open(tmp_path)
    wal.close()
    assert rec.hard_state == HardState(1, "n1", 4)
    assert rec.entries[0].type == EntryType.NOOP and rec.entries[3].data == b"cmd4"


def test_a_conflicting_suffix_is_replaced(tmp_path):
    wal, _ = WAL.open(tmp_path)
    wal.save(HardState(2, None, 1), entries(1, 1, 5))
    wal.save(HardState(3, "n2", 2), entries(3, 3, 4))  # a new leader overwrites 3..5
    wal.close()
    _, rec = WAL.open(tmp_path)
    assert [(e.term, e.index) for e in rec.entries] == [(1, 1), (1, 2), (3, 3), (3, 4)]


def test_a_gap_in_the_log_is_an_error_not_a_torn_tail(tmp_path):
    wal, _ = WAL.open(tmp_path)
    wal.save(None, entries(1, 1, 2) + entries(1, 5, 5))
    wal.close()
    with pytest.raises(WALError, match="entry 5 leaves a gap after 2"):
        WAL.open(tmp_path)


def test_torn_tail_at_every_byte_of_the_last_record_is_discarded(tmp_path):
    wal, _ = WAL.open(tmp_path)
    wal.save(HardState(1, "n1", 2), entries(1, 1, 2))
    good = len((tmp_path / FILE_NAME).read_bytes().rstrip(b"\0"))
    wal.save(None, [Entry(1, 3, EntryType.NORMAL, b"the last one")])
    wal.close()
    full = (tmp_path / FILE_NAME).read_bytes().rstrip(b"\0")
    for cut in range(good, len(full)):
        d = tmp_path / f"cut{cut}"
        d.mkdir()
        (d / FILE_NAME).write_bytes(full[:cut])
        wal2, rec = WAL.open(d)
        assert [e.index for e in rec.entries] == [1, 2], cut
        assert rec.hard_state == HardState(1, "n1", 2)
        assert rec.truncated_bytes == len(full[good:cut].rstrip(b"\0"))  # zeros are no record
        assert not (d / FILE_NAME).read_bytes()[good:].strip(b"\0")  # discarded on disk too
        # The log stays usable: the next save lands after the good prefix.
        wal2.save(None, entries(2, 3, 3))
        wal2.close()
        _, rec = WAL.open(d)
        assert [(e.term, e.index) for e in rec.entries] == [(1, 1), (1, 2), (2, 3)]


def test_a_corrupt_byte_in_the_last_record_is_detected(tmp_path):
    wal, _ = WAL.open(tmp_path)
    wal.save(HardState(1, None, 0), entries(1, 1, 2))
    wal.save(None, entries(1, 3, 3))
    wal.close()
    path = tmp_path / FILE_NAME
    data = bytearray(path.read_bytes())
    data[len(data.rstrip(b"\0")) - 2] ^= 0xFF
    path.write_bytes(bytes(data))
    _, rec = WAL.open(tmp_path)
    assert [e.index for e in rec.entries] == [1, 2]
    assert rec.hard_state.commit == 0


def test_records_after_a_torn_one_never_come_back(tmp_path):
    wal, _ = WAL.open(tmp_path)
    wal.save(None, entries(1, 1, 1))
    start = len((tmp_path / FILE_NAME).read_bytes().rstrip(b"\0"))
    wal.save(None, entries(1, 2, 3))  # as if page 2 reached the disk and page 1 did not:
    wal.close()
    path = tmp_path / FILE_NAME
    data = bytearray(path.read_bytes())
    data[start + 8] ^= 0xFF  # damage entry 2, leaving entry 3 intact behind it
    path.write_bytes(bytes(data))
    wal, rec = WAL.open(tmp_path)
    assert [e.index for e in rec.entries] == [1]
    wal.save(None, [Entry(2, 2, EntryType.NORMAL, b"")])  # shorter than what it replaces
    wal.close()
    _, rec = WAL.open(tmp_path)
    assert [(e.term, e.index) for e in rec.entries] == [(1, 1), (2, 2)]


def test_the_file_grows_by_preallocated_chunks(tmp_path):
    wal, _ = WAL.open(tmp_path)
    wal.save(None, entries(1, 1, 500))
    wal.close()
    size = (tmp_path / FILE_NAME).stat().st_size
    assert size % 4096 == 0
    _, rec = WAL.open(tmp_path)
    assert len(rec.entries) == 500 and rec.truncated_bytes == 0


def test_a_batch_is_written_with_one_fsync(tmp_path, monkeypatch):
    calls = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (calls.append(fd), real(fd)))
    wal, _ = WAL.open(tmp_path)
    wal.save(HardState(1, "n1", 0), entries(1, 1, 100))
    assert len(calls) == 1
    wal.save(None, [])
    wal.save(HardState(1, "n1", 100), [])  # only the commit index moved: no fsync needed
    assert len(calls) == 1
    wal.save(HardState(2, None, 100), [])  # a new term must be durable
    assert len(calls) == 2
    wal.close()
    wal, _ = WAL.open(tmp_path / "nofsync", fsync=False)
    wal.save(None, entries(1, 1, 1))
    assert len(calls) == 2
    wal.close()

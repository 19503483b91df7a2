"""Durable storage: round trips, replaced suffixes, recovery from a torn tail at every byte."""

import os

import pytest

from splitbrain.raft.messages import Entry, EntryType, HardState
from splitbrain.raft.wal import FILE_NAME, WAL, WALError


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
    wal.close()
    _, rec = WAL.open(tmp_path)
    assert rec.hard_state == HardState(1, "n1", 3)
    assert [e.index for e in rec.entries] == [1, 2, 3, 4]
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
    good = (tmp_path / FILE_NAME).stat().st_size
    wal.save(None, [Entry(1, 3, EntryType.NORMAL, b"the last one")])
    wal.close()
    full = (tmp_path / FILE_NAME).read_bytes()
    for cut in range(good, len(full)):
        d = tmp_path / f"cut{cut}"
        d.mkdir()
        (d / FILE_NAME).write_bytes(full[:cut])
        wal2, rec = WAL.open(d)
        assert [e.index for e in rec.entries] == [1, 2], cut
        assert rec.hard_state == HardState(1, "n1", 2)
        assert rec.truncated_bytes == cut - good
        assert (d / FILE_NAME).stat().st_size == good  # truncated on disk too
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
    data[-2] ^= 0xFF
    path.write_bytes(bytes(data))
    _, rec = WAL.open(tmp_path)
    assert [e.index for e in rec.entries] == [1, 2]
    assert rec.hard_state.commit == 0


def test_a_batch_is_written_with_one_fsync(tmp_path, monkeypatch):
    calls = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (calls.append(fd), real(fd)))
    wal, _ = WAL.open(tmp_path)
    wal.save(HardState(1, "n1", 0), entries(1, 1, 100))
    assert len(calls) == 1
    wal.save(None, [])
    assert len(calls) == 1
    wal.close()
    wal, _ = WAL.open(tmp_path / "nofsync", fsync=False)
    wal.save(None, entries(1, 1, 1))
    assert len(calls) == 1
    wal.close()

"""Durable storage: round trips, replaced suffixes, recovery from a torn tail at every byte."""

import os

import pytest

from splitbrain.raft.host import OsFiles
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
    size = (tmp_path / FILE_NAME).stat().st_size
    full = (tmp_path / FILE_NAME).read_bytes().rstrip(b"\0")
    for cut in range(good, len(full)):
        d = tmp_path / f"cut{cut}"
        d.mkdir()
        (d / FILE_NAME).write_bytes(full[:cut].ljust(size, b"\0"))  # killed mid-write
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


def test_a_log_cut_short_is_refused_wherever_the_cut_falls(tmp_path):
    """A kill or a power loss never changes the file's size but by whole chunks, so a file
    cut anywhere in its records, even at a record boundary, lost records that may have been
    durable: the node refuses to start, names the file and the offset, and leaves it as it
    is; the bytes written back, it starts on every record."""
    wal, _ = WAL.open(tmp_path, preallocate=4096)
    wal.save(HardState(1, "n1", 2), entries(1, 1, 2))
    boundary = len((tmp_path / FILE_NAME).read_bytes().rstrip(b"\0"))
    wal.save(None, entries(1, 3, 3))
    wal.close()
    whole = (tmp_path / FILE_NAME).read_bytes()
    end = len(whole.rstrip(b"\0"))
    for cut in (1, boundary, boundary + 3, end - 1):
        (tmp_path / FILE_NAME).write_bytes(whole[:cut])
        with pytest.raises(WALError, match=f"raft.wal: offset {cut}: cut short"):
            WAL.open(tmp_path, preallocate=4096)
        assert (tmp_path / FILE_NAME).read_bytes() == whole[:cut]
    (tmp_path / FILE_NAME).write_bytes(whole)
    _, rec = WAL.open(tmp_path, preallocate=4096)
    assert [e.index for e in rec.entries] == [1, 2, 3]


def test_a_kill_while_a_new_chunk_is_zeroed_leaves_a_log_that_starts(tmp_path):
    """The size changes at once (truncate) before the chunk's zeros are written, so a process
    killed halfway through writing them leaves a size of whole chunks, which the next start
    takes with every record."""

    class Killed(Exception):
        pass

    class DiesZeroing(OsFiles):
        def open(self, path):
            file = super().open(path)
            write = file.pwrite

            def pwrite(data, offset):
                if len(data) >= 4096 and not bytes(data).strip(b"\0"):
                    write(bytes(data)[: len(data) // 2], offset)  # the kill lands halfway
                    raise Killed
                return write(data, offset)

            file.pwrite = pwrite
            return file

    wal, _ = WAL.open(tmp_path, preallocate=4096)
    wal.save(HardState(1, "n1", 0), entries(1, 1, 2))
    wal.close()
    wal, _ = WAL.open(tmp_path, files=DiesZeroing(), preallocate=4096)
    with pytest.raises(Killed):
        wal.save(None, [Entry(1, 3, EntryType.NORMAL, bytes(5000))])
    wal.close()
    _, rec = WAL.open(tmp_path, preallocate=4096)
    assert [e.index for e in rec.entries] == [1, 2]


def flip(path, offset, mask=0xFF):
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))
    return bytes(data)


def test_a_damaged_last_record_that_was_written_whole_is_corruption(tmp_path):
    """Its last byte is there, so no write was interrupted: it may have been durable."""
    wal, _ = WAL.open(tmp_path)
    wal.save(HardState(1, None, 0), entries(1, 1, 2))
    wal.save(None, entries(1, 3, 3))
    wal.close()
    path = tmp_path / FILE_NAME
    damaged = flip(path, len(path.read_bytes().rstrip(b"\0")) - 2)
    with pytest.raises(WALError, match="the record is complete but fails its checksum"):
        WAL.open(tmp_path)
    assert path.read_bytes() == damaged  # left as it was, for a person to look at


def test_a_damaged_last_record_that_ends_in_zeros_of_its_own_is_corruption(tmp_path):
    """An entry without data (a leader's no-op) ends with zero bytes: damage to the last one
    read as a torn tail, and a node dropped an entry it had acknowledged, then voted without it
    (the simulator's corrupt fault: another entry was committed at that index). Its end mark
    says it was written whole, wherever a bit flips."""
    wal, _ = WAL.open(tmp_path / "good")
    wal.save(HardState(1, "n1", 0), entries(1, 1, 2))
    start = len((tmp_path / "good" / FILE_NAME).read_bytes().rstrip(b"\0"))
    wal.save(None, [Entry(2, 3, EntryType.NOOP, b"")])
    wal.close()
    good = (tmp_path / "good" / FILE_NAME).read_bytes()
    end = len(good.rstrip(b"\0"))
    assert good[start:end].count(0) > 0  # zeros of its own
    for offset in range(start, end):
        d = tmp_path / f"flip{offset}"
        d.mkdir()
        (d / FILE_NAME).write_bytes(good)
        damaged = flip(d / FILE_NAME, offset, 0x40)
        with pytest.raises(WALError, match=f"offset {start}: corrupt, not a torn tail"):
            WAL.open(d)
        assert (d / FILE_NAME).read_bytes() == damaged


def test_a_damaged_length_in_the_last_record_is_corruption(tmp_path):
    wal, _ = WAL.open(tmp_path)
    wal.save(None, entries(1, 1, 2))
    start = len((tmp_path / FILE_NAME).read_bytes().rstrip(b"\0"))
    wal.save(None, entries(1, 3, 3))
    wal.close()
    flip(tmp_path / FILE_NAME, start + 2, 0x01)  # the length now claims 256 bytes more
    with pytest.raises(WALError, match=f"offset {start}: .* but its length reads 282"):
        WAL.open(tmp_path)


def test_mid_file_damage_anywhere_in_a_record_refuses_to_start(tmp_path):
    """Issue 10 item 3: one flipped byte in the middle of the log was read as a torn tail and
    everything after it discarded, acknowledged writes included."""
    wal, _ = WAL.open(tmp_path / "good")
    wal.save(HardState(1, "n1", 0), entries(1, 1, 1))
    start = len((tmp_path / "good" / FILE_NAME).read_bytes().rstrip(b"\0"))
    wal.save(None, entries(1, 2, 2))
    end = len((tmp_path / "good" / FILE_NAME).read_bytes().rstrip(b"\0"))
    wal.save(HardState(1, "n1", 3), entries(1, 3, 20))
    wal.close()
    good = (tmp_path / "good" / FILE_NAME).read_bytes()
    for offset in range(start, end):  # every byte of entry 2's record
        d = tmp_path / f"flip{offset}"
        d.mkdir()
        (d / FILE_NAME).write_bytes(good)
        damaged = flip(d / FILE_NAME, offset)
        with pytest.raises(WALError) as err:
            WAL.open(d)
        assert str(err.value).startswith(f"{d / FILE_NAME}: offset {start}: corrupt, not a torn")
        assert (d / FILE_NAME).read_bytes() == damaged


def test_a_damaged_record_before_valid_ones_is_corruption_even_in_the_last_batch(tmp_path):
    """As if a power loss kept the second page of the last batch and not the first: that is
    indistinguishable from damage to durable records, so the node refuses (the safe side)."""
    wal, _ = WAL.open(tmp_path)
    wal.save(None, entries(1, 1, 1))
    start = len((tmp_path / FILE_NAME).read_bytes().rstrip(b"\0"))
    wal.save(None, entries(1, 2, 3))
    wal.close()
    flip(tmp_path / FILE_NAME, start + 8)  # damage entry 2, leaving entry 3 intact behind it
    with pytest.raises(WALError, match=f"offset {start}: .* a valid record follows at offset"):
        WAL.open(tmp_path)


def test_garbage_after_the_log_that_is_no_record_is_discarded(tmp_path):
    wal, _ = WAL.open(tmp_path)
    wal.save(HardState(1, "n1", 1), entries(1, 1, 3))
    wal.close()
    path = tmp_path / FILE_NAME
    end = len(path.read_bytes().rstrip(b"\0"))
    flip(path, end + 100)
    wal, rec = WAL.open(tmp_path)
    wal.close()
    assert [e.index for e in rec.entries] == [1, 2, 3] and rec.truncated_bytes == 101
    assert not path.read_bytes()[end:].strip(b"\0")


def test_a_term_no_core_could_reach_is_corruption(tmp_path):
    """Issue 10 item 1: a forged term recorded by an older node made it crash at every restart."""
    wal, _ = WAL.open(tmp_path)
    wal.save(HardState(2**64 - 1, None, 0), [])
    wal.close()
    with pytest.raises(WALError, match="offset 0: hard state term 18446744073709551615"):
        WAL.open(tmp_path)


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

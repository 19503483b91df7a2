"""The snapshot file, the state machine's snapshot, WAL compaction, and power loss at every step
of a snapshot (the simulator's disk forgets what was not synced)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from splitbrain.raft import kv, snapshot
from splitbrain.raft.messages import Entry, HardState
from splitbrain.raft.snapshot import SnapshotError
from splitbrain.raft.wal import WAL, WALError
from splitbrain.sim.disk import DiskFiles, SimDisk


def entries(lo: int, hi: int, term: int = 1) -> list[Entry]:
    return [Entry(term, i, data=f"e{i}".encode()) for i in range(lo, hi + 1)]


def test_a_snapshot_decodes_to_what_was_encoded_and_damage_names_its_offset():
    body = bytes(range(256)) * 600  # three blocks
    data = snapshot.encode(7, 3, body)
    decoded = snapshot.decode(data, "snap")
    assert (decoded.index, decoded.term, decoded.body) == (7, 3, body)
    assert snapshot.check(7, 3, data) and not snapshot.check(7, 2, data)
    head = len(snapshot.MAGIC)
    block2 = head + 28 + 4 + snapshot.BLOCK
    for at, where in [(head + 3, head), (block2 + 100, block2), (2, 0)]:
        damaged = bytearray(data)
        damaged[at] ^= 0x10
        with pytest.raises(SnapshotError, match=rf"^snap: offset {where}: corrupt snapshot"):
            snapshot.decode(bytes(damaged), "snap")
    with pytest.raises(SnapshotError, match="truncated"):
        snapshot.decode(data[:-1], "snap")
    with pytest.raises(SnapshotError, match="bytes after the snapshot"):
        snapshot.decode(data + b"\0", "snap")


def test_the_state_machine_snapshot_holds_the_data_and_the_sessions():
    machine = kv.KV()
    for seq in range(1, kv.SESSION_WINDOW + 5):
        machine.apply(kv.Command("c1", seq, "append", "k", f"{seq},"))
    machine.apply(kv.Command("c2", 1, "cas", "r", [None, 3]))
    state = machine.state()
    copy = kv.KV.restore(state)
    assert copy.state() == state and kv.digest(copy.state()) == kv.digest(state)
    # exactly once survives: a repeat is recognised, a forgotten seq refused, as before
    seq = kv.SESSION_WINDOW + 4
    assert copy.apply(kv.Command("c1", seq, "append", "k", "x")).repeat
    assert copy.apply(kv.Command("c1", 2, "append", "k", "x")).error == "stale-request"
    assert copy.read("get", "k") == machine.read("get", "k")
    machine.apply(kv.Command("c3", 1, "put", "z", "1"))
    assert kv.digest(machine.state()) != kv.digest(state)
    with pytest.raises(kv.CommandError, match="not a state machine snapshot"):
        kv.KV.restore(b'{"data": [[1, 2]], "sessions": []}')


def test_compaction_keeps_the_tail_and_a_restart_reads_it(tmp_path: Path):
    wal, _ = WAL.open(tmp_path, preallocate=4096)
    hs = HardState(2, "n1", 10)
    wal.save(hs, entries(1, 10))
    wal.close()
    before = (tmp_path / "raft.wal").stat().st_size
    wal, _ = WAL.open(tmp_path, preallocate=4096)  # a restarted node's log: read once already
    wal.compact(6, 1)
    wal.save(None, entries(11, 12))
    wal.close()
    assert (tmp_path / "raft.wal").stat().st_size <= before
    assert not (tmp_path / "raft.wal.tmp").exists()
    _, recovered = WAL.open(tmp_path, preallocate=4096)
    assert recovered.snapshot == (6, 1)
    assert [e.index for e in recovered.entries] == list(range(7, 13))
    assert recovered.hard_state == hs


def test_compaction_drops_a_tail_that_conflicts_with_the_snapshot(tmp_path: Path):
    wal, _ = WAL.open(tmp_path, preallocate=4096)
    wal.save(HardState(1, None, 0), entries(1, 5))
    wal.compact(4, 2)  # a leader's snapshot: our entry 4 is of another term
    wal.close()
    _, recovered = WAL.open(tmp_path, preallocate=4096)
    assert (recovered.snapshot, recovered.entries) == ((4, 2), [])


class Crash(Exception):
    pass


class CrashingFiles(DiskFiles):
    """DiskFiles that crash at their `at`-th write, fsync, rename or directory sync."""

    def __init__(self, disk: SimDisk, at: int) -> None:
        super().__init__(disk, SimpleNamespace(alive=True), None)  # type: ignore[arg-type]
        self.steps = 0
        self.at = at

    def step(self) -> None:
        self.steps += 1
        if self.steps == self.at:
            raise Crash

    def open(self, path: Path):
        file, files = super().open(path), self

        class Stepping:
            def read(self):
                return file.read()

            def pwrite(self, data, offset):
                files.step()
                return file.pwrite(data, offset)

            def fsync(self):
                files.step()
                file.fsync()

            fdatasync = fsync

            def truncate(self, size):
                files.step()
                file.truncate(size)

            def close(self):
                file.close()

        return Stepping()

    def rename(self, src: Path, dst: Path) -> None:
        self.step()
        super().rename(src, dst)

    def sync_dir(self, path: Path) -> None:
        self.step()


def recover(disk: SimDisk, directory: Path, append: list[Entry] | None = None
            ) -> tuple[int, list[int]]:  # fmt: skip
    """What a restarted node starts from, as the server loads it (snapshot.resume): (snapshot
    index, entries); then `append` is saved to its log, as that life would."""
    files = DiskFiles(disk, SimpleNamespace(alive=True), None)  # type: ignore[arg-type]
    wal, recovered = WAL.open(directory, files=files, preallocate=4096)
    try:
        loaded, log = snapshot.resume(files, directory, wal, recovered)
        if append:
            wal.save(HardState(append[-1].term, None, 0), append)
    finally:
        wal.close()
    return (loaded[0].index if loaded else 0), [e.index for e in log]


@pytest.mark.parametrize("taken", [True, False], ids=["taken", "installed"])
def test_power_loss_at_any_step_of_a_snapshot_loses_no_entry(taken: bool):
    """Snapshot file (tmp, fsync, rename, directory fsync), then the WAL rewritten the same way:
    a power loss after any step leaves a snapshot and a log that together hold every entry, and
    the log that life appends to is read whole by the next. Taken: a snapshot of entry 6 of a
    log of 10. Installed: a leader's snapshot of entry 15, beyond the log's end, after which
    the next life appends 16 (a WAL still holding 1-10 and then 16 has a gap)."""
    directory = Path("data")
    index, term, last = (6, 1, 10) if taken else (15, 2, 15)
    outcomes = set()
    at = 1
    while True:
        disk = SimDisk()
        files = CrashingFiles(disk, at=0)
        wal, _ = WAL.open(directory, files=files, preallocate=4096)
        wal.save(HardState(1, None, 10), entries(1, 10))
        files.at, files.steps = at, 0
        try:
            snapshot.write(files, directory, snapshot.encode(index, term, b"state"))
            wal.compact(index, term)
        except Crash:
            pass
        else:
            break
        finally:
            wal.close()
        disk.power_loss()
        base, log = recover(disk, directory)
        end = last if base else 10  # without the snapshot, the log of 10 is all there is
        assert list(range(base + 1, end + 1)) == log, f"crash at step {at}"
        recover(disk, directory, append=entries(end + 1, end + 1, term=2))
        assert recover(disk, directory) == (base, [*log, end + 1]), f"crash at step {at}"
        outcomes.add(base)
        at += 1
    assert at > 6 and outcomes == {0, index}  # it crashed before and after the snapshot counted


def test_a_log_that_starts_after_a_missing_snapshot_is_refused(tmp_path: Path):
    wal, _ = WAL.open(tmp_path, preallocate=4096)
    wal.save(HardState(1, None, 3), entries(1, 3))
    wal.compact(2, 1)
    wal.close()
    _, recovered = WAL.open(tmp_path, preallocate=4096)
    with pytest.raises(WALError, match=r"starts after entry 2, but .*snapshot is missing"):
        snapshot.log_after(recovered, None, tmp_path)
    older = snapshot.decode(snapshot.encode(1, 1, b""))
    with pytest.raises(WALError, match="snapshot of entry 1 is older than the log"):
        snapshot.log_after(recovered, (older, b""), tmp_path)

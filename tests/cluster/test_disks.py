"""Disk faults: the forgetful FUSE filesystem (diskfs.py) and its mounts (disks.py).

The model: a power loss keeps what each file held at its last fsync and each directory's
entries as of its last fsync; ENOSPC while full; never a mount left behind. Needs /dev/fuse and
pyfuse3 (CI installs both); skipped with the reason otherwise.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from splitbrain.cluster import disks
from splitbrain.cluster.disks import Disks, NodeDisk
from splitbrain.cluster.lifeline import Lifeline
from splitbrain.cluster.process import output_tail, signal_proc, spawn
from splitbrain.sim.disk import SimFile

needs_fuse = pytest.mark.skipif(disks.missing() is not None,
                                reason=f"disk faults cannot run here: {disks.missing()}")
pytestmark = pytest.mark.timeout(60)
DRIVER = str(Path(__file__).with_name("driver.py"))


def on_disk(tmp_path: Path, test: Callable[[Disks, Path], Awaitable[None]]) -> None:
    """Mount one node's disk under tmp_path, run `test(disks, mountpoint)`, unmount."""

    async def main() -> None:
        lifeline = Lifeline()
        disk = NodeDisk.under(tmp_path / "n1", tmp_path / "n1" / "data")
        mounted = await Disks.start({"n1": disk}, lifeline)
        try:
            await test(mounted, disk.mountpoint)
        finally:
            mounted.close()
            lifeline.close()
        assert not disks.is_mounted(disk.mountpoint)

    asyncio.run(main())


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@needs_fuse
def test_writes_since_the_last_fsync_are_forgotten_and_synced_ones_kept(tmp_path: Path) -> None:
    async def test(d: Disks, m: Path) -> None:
        fsync(m)  # the file's entry is durable once it exists: only its data is at stake
        fd = os.open(m / "wal", os.O_RDWR | os.O_CREAT, 0o644)
        fsync(m)
        os.pwrite(fd, b"a" * 6000, 0)
        os.fsync(fd)
        os.pwrite(fd, b"b" * 10, 4090)  # across a block boundary
        os.pwrite(fd, b"c" * 3000, 5000)  # and past the synced end
        os.fdatasync(fd)  # fdatasync is a sync too
        os.pwrite(fd, b"d" * 100, 100)
        os.ftruncate(fd, 50)
        os.pwrite(fd, b"e" * 9000, 9000)
        os.close(fd)
        synced = b"a" * 4090 + b"b" * 10 + b"a" * 900 + b"c" * 3000
        assert await d.power_loss("n1") == {"files": 1, "bytes": 8000, "entries": 0}
        assert (m / "wal").read_bytes() == synced
        assert await d.power_loss("n1") == {"files": 0, "bytes": 0, "entries": 0}
        assert (m / "wal").read_bytes() == synced

    on_disk(tmp_path, test)


@needs_fuse
def test_a_file_never_synced_is_empty_and_one_never_dir_synced_is_gone(tmp_path: Path) -> None:
    async def test(d: Disks, m: Path) -> None:
        (m / "kept").write_bytes(b"x")
        fsync(m)  # its entry is durable, not its data
        (m / "gone").write_bytes(b"y")
        fsync(m / "gone")  # its data is durable, not its entry
        await d.power_loss("n1")
        assert sorted(os.listdir(m)) == ["kept"]
        assert (m / "kept").read_bytes() == b""

    on_disk(tmp_path, test)


@needs_fuse
def test_renames_and_removals_without_a_directory_fsync_are_undone(tmp_path: Path) -> None:
    async def test(d: Disks, m: Path) -> None:
        for name, data in (("a", b"A"), ("b", b"B"), ("c", b"C")):
            (m / name).write_bytes(data)
            fsync(m / name)
        (m / "sub").mkdir()
        fsync(m)
        (m / "a").replace(m / "b")  # replaces b: b's old content must come back
        (m / "c").unlink()
        (m / "sub" / "new").write_bytes(b"N")
        fsync(m / "sub" / "new")
        (m / "dir").mkdir()
        (m / "dir" / "f").write_bytes(b"F")
        assert sorted(os.listdir(m)) == ["b", "dir", "sub"]
        assert await d.power_loss("n1") == {"files": 1, "bytes": 0, "entries": 5}
        assert sorted(os.listdir(m)) == ["a", "b", "c", "sub"]
        assert [(m / n).read_bytes() for n in "abc"] == [b"A", b"B", b"C"]
        assert os.listdir(m / "sub") == []

    on_disk(tmp_path, test)


@needs_fuse
def test_a_directory_fsync_makes_its_changes_and_every_earlier_one_durable(tmp_path: Path
                                                                            ) -> None:  # fmt: skip
    async def test(d: Disks, m: Path) -> None:
        (m / "sub").mkdir()
        (m / "sub" / "f").write_bytes(b"F")
        fsync(m / "sub" / "f")
        fsync(m / "sub")  # f's entry, and sub's own (an earlier change) with it
        (m / "later").write_bytes(b"L")
        (m / "sub" / "f").rename(m / "g")  # the old name was durable: it comes back
        await d.power_loss("n1")
        assert sorted(os.listdir(m)) == ["sub"]
        assert (m / "sub" / "f").read_bytes() == b"F"

    on_disk(tmp_path, test)


@needs_fuse
def test_the_file_model_agrees_with_the_simulators(tmp_path: Path) -> None:
    """sim/disk.py's SimFile and the mount keep the same bytes through writes, syncs and a
    power loss: a simulated run and a real one lose the same things."""

    async def test(d: Disks, m: Path) -> None:
        rng = random.Random(7)
        fd = os.open(m / "f", os.O_RDWR | os.O_CREAT, 0o644)
        fsync(m)
        for round_ in range(20):
            sim = SimFile()
            sim.pwrite(os.pread(fd, 1 << 20, 0), 0)
            sim.sync()
            for _ in range(rng.randrange(1, 12)):
                if rng.random() < 0.2:
                    os.fdatasync(fd)
                    sim.sync()
                else:
                    data = bytes([rng.randrange(1, 256)]) * rng.randrange(1, 9000)
                    at = rng.randrange(0, 20000)
                    os.pwrite(fd, data, at)
                    sim.pwrite(data, at)
            assert os.pread(fd, 1 << 20, 0) == sim.read(), round_
            await d.power_loss("n1")
            sim.power_loss()
            assert os.pread(fd, 1 << 20, 0) == sim.read(), round_
        os.close(fd)

    on_disk(tmp_path, test)


@needs_fuse
def test_a_full_disk_fails_writes_with_enospc_until_emptied(tmp_path: Path) -> None:
    async def test(d: Disks, m: Path) -> None:
        (m / "f").write_bytes(b"before")
        await d.set_full("n1", True)
        for attempt in (lambda: (m / "f").write_bytes(b"x"), lambda: (m / "g").touch(),
                        lambda: (m / "h").mkdir()):  # fmt: skip
            with pytest.raises(OSError) as caught:
                attempt()
            assert caught.value.errno == errno.ENOSPC
        assert os.statvfs(m).f_bavail == 0
        await d.set_full("n1", False)
        (m / "f").write_bytes(b"after")
        assert (m / "f").read_bytes() == b"after"

    on_disk(tmp_path, test)


@needs_fuse
def test_a_driver_killed_with_sigkill_leaves_no_mount(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, DRIVER, str(tmp_path), "fake", "2", "proxy",
                             "disks"], stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        up = json.loads(proc.stdout.readline())
        assert {"disk-n1", "disk-n2"} <= set(up["pids"])
        assert all(disks.is_mounted(Path(p)) for p in up["mounts"])
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 20
        while any(disks.is_mounted(Path(p)) for p in up["mounts"]) and (
                time.monotonic() < deadline):  # fmt: skip
            time.sleep(0.05)
        assert not any(disks.is_mounted(Path(p)) for p in up["mounts"])
    finally:
        proc.kill()
        proc.communicate()


@needs_fuse
def test_a_daemon_unmounts_however_its_stop_and_the_death_signal_interleave(
        tmp_path: Path) -> None:  # fmt: skip
    """A dying driver's end of the control socket closes, then the parent-death SIGTERM comes.
    The daemon must unmount and exit 0 whichever it acts on. The signal is sent 0 to 10 ms after
    the EOF, in steps of 0.5 ms. Two races lived here: a SIGTERM that landed while the daemon
    shut down after the EOF killed it before it unmounted (the test above saw a dead mount in
    about 1 driver kill of 35), and pyfuse3's terminate raised when a request had just come."""
    lifeline = Lifeline()
    try:
        for step in range(21):
            disk = NodeDisk.under(tmp_path / str(step), tmp_path / str(step) / "data")
            for d in (disk.mountpoint, disk.tree, disk.lost):
                d.mkdir(parents=True)
            ours, theirs = socket.socketpair()
            log = tmp_path / f"{step}.log"
            proc = spawn(disks.daemon_command(disk, theirs.fileno()), lifeline,
                         pass_fds=(theirs.fileno(),), output=log, death_signal=signal.SIGTERM)
            theirs.close()
            try:
                deadline = time.monotonic() + 10
                while not disks.is_mounted(disk.mountpoint) and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert disks.is_mounted(disk.mountpoint)
                ours.close()
                time.sleep(step * 0.0005)  # where the signal lands: the point of the test
                signal_proc(proc, signal.SIGTERM)
                assert (proc.wait(10), disks.is_mounted(disk.mountpoint)) == (0, False), (
                    f"step {step}: {output_tail(log)}")
            finally:
                ours.close()
                signal_proc(proc, signal.SIGKILL)
                proc.wait(10)
                if disks.is_mounted(disk.mountpoint):
                    disks.unmount(disk.mountpoint)
    finally:
        lifeline.close()


@needs_fuse
def test_a_mount_whose_daemon_was_killed_is_swept_by_clean(tmp_path: Path) -> None:
    async def test(d: Disks, m: Path) -> None:
        os.kill(d.pids()["n1"], signal.SIGKILL)  # no chance to unmount: a dead mount stays
        deadline = time.monotonic() + 10
        while disks.daemon_alive(d.pids()["n1"]) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert disks.is_mounted(m)
        out = subprocess.run([sys.executable, "-m", "splitbrain", "clean"],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert f"unmounted the disk of a run whose daemon is gone: {m}" in out.stdout
        assert not disks.is_mounted(m)

    on_disk(tmp_path, test)


def test_missing_names_what_this_machine_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os.path, "exists", lambda p: p != "/dev/fuse")
    assert disks.missing() == ("/dev/fuse does not exist (FUSE is not available in this kernel "
                               "or container)")

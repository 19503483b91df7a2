"""Process bookkeeping for end-to-end campaign tests: run a command while remembering every
descendant it starts, so a test can prove none outlived it, and reap them if one did."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

SPLITBRAIN = [sys.executable, "-m", "splitbrain"]


class Watched:
    """A child process and every descendant seen while polling it."""

    def __init__(self, cmd: list[str], log: Path) -> None:
        with log.open("wb") as sink:
            self.proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
        self.log = log
        self.ps = psutil.Process(self.proc.pid)
        self.seen: dict[int, psutil.Process] = {}

    def poll_children(self) -> list[psutil.Process]:
        try:
            kids = self.ps.children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        for k in kids:
            self.seen.setdefault(k.pid, k)
        return kids

    def wait_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            self.poll_children()
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} within {timeout} s\n{self.output()}")
            time.sleep(0.1)

    def finish(self, timeout: float) -> int:
        self.wait_until(lambda: self.proc.poll() is not None, timeout, "it did not finish")
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def leftovers(self, timeout: float = 15) -> list[psutil.Process]:
        """Descendants still alive `timeout` s after the process ended (zombies count as gone)."""
        _, alive = psutil.wait_procs(list(self.seen.values()), timeout=timeout)
        return [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for p in self.seen.values():
            try:
                p.send_signal(signal.SIGCONT)
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(list(self.seen.values()), timeout=10)

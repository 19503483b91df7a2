"""A few nodes of the bundled Raft as local processes, wired directly: for tests and benchmarks.

No link proxies and no nemesis (that is cluster/): each node connects straight to the others
on 127.0.0.1. Rules it keeps: ports are picked free and kept across restarts; every child
holds the lifeline, so it dies with us even if we are killed; `close()` kills and reaps every
child, so nothing is left behind. Peer links are authenticated with a secret written to
`root/cluster.secret` (mode 0600, cluster/secret.py) unless `secret=False`.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from splitbrain.cluster.lifeline import Lifeline
from splitbrain.cluster.secret import FILE_NAME as SECRET_FILE
from splitbrain.cluster.secret import write_secret
from splitbrain.raft.client import node_status


def free_ports(n: int) -> list[int]:
    """n distinct TCP ports that were free on 127.0.0.1 a moment ago."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class LocalCluster:
    """`with LocalCluster(dir, 3) as c: c.start_all(); leader = await c.wait_leader()`."""

    def __init__(
        self, root: Path, size: int = 3, *, node_args: Sequence[str] = (), secret: bool = True
    ) -> None:
        self.root = root
        self.names = [f"n{i}" for i in range(1, size + 1)]
        ports = free_ports(2 * size)
        self.peer_addresses = {n: ("127.0.0.1", ports[i]) for i, n in enumerate(self.names)}
        self.client_addresses = {
            n: ("127.0.0.1", ports[size + i]) for i, n in enumerate(self.names)
        }
        self.node_args = list(node_args)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        root.mkdir(parents=True, exist_ok=True)
        self.secret_file = write_secret(root / SECRET_FILE) if secret else None
        self._lifeline = Lifeline()

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def node_dir(self, node: str) -> Path:
        return self.root / node

    def start(self, node: str, *extra: str) -> None:
        cluster = ",".join(f"{n}={h}:{p}" for n, (h, p) in self.peer_addresses.items())
        d = self.node_dir(node)
        d.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "splitbrain", "node", "--id", node, "--cluster", cluster]
        argv += [
            "--client-port",
            str(self.client_addresses[node][1]),
            "--data-dir",
            str(d / "data"),
        ]
        if self.secret_file is not None:
            argv += ["--secret-file", str(self.secret_file)]
        argv += ["--lifeline-fd", str(self._lifeline.fd), *self.node_args, *extra]
        with open(d / "stderr.log", "ab") as err:
            self.procs[node] = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                pass_fds=(self._lifeline.fd,),
            )

    def start_all(self) -> None:
        for node in self.names:
            self.start(node)

    def alive(self, node: str) -> bool:
        proc = self.procs.get(node)
        return proc is not None and proc.poll() is None

    def kill(self, node: str) -> None:
        """kill -9, and reap."""
        proc = self.procs.pop(node)
        proc.kill()
        proc.wait()

    def stop(self, node: str, timeout: float = 10.0) -> int:
        """SIGTERM; the exit code (killed with -9 if it does not exit within `timeout`)."""
        proc = self.procs.pop(node)
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise

    def close(self) -> None:
        for node in list(self.procs):
            self.kill(node)
        self._lifeline.close()

    async def status(self) -> dict[str, dict | None]:
        addrs = self.client_addresses
        replies = await asyncio.gather(*(node_status(addrs[n], 0.5) for n in self.names))
        return dict(zip(self.names, replies, strict=True))

    async def wait_leader(self, timeout: float = 10.0, *, exclude: str | None = None) -> str:
        """The node that is leader and that every other live node follows (each running node
        must answer: one still starting does not count as following); TimeoutError if none."""
        async with asyncio.timeout(timeout):
            while True:
                statuses = await self.status()
                leaders = {s["id"] for s in statuses.values() if s and s["role"] == "leader"}
                live = [s for n, s in statuses.items() if self.alive(n)]
                if None in live:
                    await asyncio.sleep(0.02)
                    continue
                if len(leaders) == 1 and (leader := leaders.pop()) != exclude:
                    term = statuses[leader]["term"]  # type: ignore[index]
                    if all(s["leader"] == leader and s["term"] == term for s in live):
                        return leader
                await asyncio.sleep(0.02)

    async def wait_caught_up(self, node: str, timeout: float = 10.0) -> None:
        """Until `node` has applied every entry the leader's log held when we asked. (Its
        commit index is no target: right after an election it lags until the no-op commits.)"""
        async with asyncio.timeout(timeout):
            leader = await self.wait_leader(timeout)
            while (st := await node_status(self.client_addresses[leader], 0.5)) is None:
                await asyncio.sleep(0.02)
            target = st["last_index"]
            while True:
                st = await node_status(self.client_addresses[node], 0.5)
                if st and st["applied"] >= target:
                    return
                await asyncio.sleep(0.02)

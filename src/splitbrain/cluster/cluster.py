"""Cluster: the node processes and the network of one run, with the verbs a nemesis needs.

    async with Cluster(run, ["n1", "n2", "n3"]) as cluster:
        await cluster.kill("n2"); await cluster.start("n2")
        await cluster.network.apply_grudge({"n1": {"n2", "n3"}})

Rules it keeps:
- Each node gets its own peer and client port on 127.0.0.1 and its data, events and log under
  nodes/<node>/ in the run directory; a restart reuses all of them (that is what a crash is).
- Node i reaches node j only through the link proxy i->j (network.py), so the network can be cut.
- Teardown always runs — normal end, exception, Ctrl-C (asyncio cancels the task), SIGTERM (if
  nobody else handles it, the owning task is cancelled) — and is synchronous so it cannot be cut
  short. Were the driver SIGKILLed, every child still dies: lifeline pipe + PR_SET_PDEATHSIG.
- Spawn happens on the event loop's thread (the parent-death signal is tied to that thread).
- A node that exits by itself (e.g. at a crash point it was asked to arm) is `crashed`: the
  cluster tells that apart from its own kill and teardown; `start` brings it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psutil

from splitbrain.cluster.lifeline import Lifeline
from splitbrain.cluster.network import Network
from splitbrain.cluster.ports import HOST, free_ports
from splitbrain.cluster.process import (
    NodeError,
    reap,
    running,
    signal_proc,
    spawn,
    stop_all,
    wait_listening,
    wait_stopped,
)
from splitbrain.cluster.queries import NodeQueries
from splitbrain.cluster.targets import NodeLaunch, Target, bundled_raft
from splitbrain.store import RunDir

NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
START_TIMEOUT = 30.0  # a node must listen within this; generous: 2 shared cores, cold imports


@dataclass(slots=True)
class _Node:
    name: str
    argv: list[str]
    ports: tuple[int, int]  # (peer, client): the node is up when it listens on both
    output: Path  # its stdout and stderr
    proc: psutil.Popen | None = None
    paused: bool = False
    ended_by_us: bool = False  # killed or stopped by the cluster, so its exit is no crash


class Cluster(NodeQueries):
    """Node processes and link proxies of one run; use as `async with`. The leader lookup,
    crash-point arming and leader watch come from NodeQueries (queries.py)."""

    def __init__(
        self,
        run: RunDir,
        nodes: Sequence[str],
        *,
        unsafe: Sequence[str] = (),
        node_args: Sequence[str] = (),
        target: Target = bundled_raft,
        seed: int = 0,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        if not nodes:
            raise ValueError("a cluster needs at least one node")
        if len(set(nodes)) != len(nodes):
            raise ValueError(f"duplicate node names in {list(nodes)}")
        for n in nodes:
            if not NODE_NAME.fullmatch(n):
                raise ValueError(f"bad node name {n!r}: letters, digits, '_', '.', '-'")
        self.run = run
        self.nodes = tuple(nodes)
        self.unsafe = tuple(unsafe)
        self.node_args = tuple(node_args)
        self.target = target
        self.seed = seed
        self.start_timeout = start_timeout
        self.client_addresses: dict[str, tuple[str, int]] = {}
        self._nodes: dict[str, _Node] = {}
        self._lifeline: Lifeline | None = None
        self._network: Network | None = None
        self._sigterm_loop: asyncio.AbstractEventLoop | None = None

    async def __aenter__(self) -> Cluster:
        self._lifeline = Lifeline()
        try:
            self._catch_sigterm()
            ports = free_ports(2 * len(self.nodes))
            peer = {n: (HOST, ports[i]) for i, n in enumerate(self.nodes)}
            client = {n: ports[len(self.nodes) + i] for i, n in enumerate(self.nodes)}
            self._network = await Network.start(
                peer, self._lifeline, self.seed, output=self.run.path / "proxies.log"
            )
            for n in self.nodes:
                self._nodes[n] = self._prepare(n, peer, client[n])
                self.client_addresses[n] = (HOST, client[n])
            for node in self._nodes.values():
                self._spawn(node)
            await self._all_up()
        except BaseException:
            self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def network(self) -> Network:
        """The link proxies (see network.py); there once the cluster is entered."""
        assert self._network is not None, "the cluster has not started"
        return self._network

    def _prepare(self, name: str, peer: dict[str, tuple[str, int]], client_port: int) -> _Node:
        assert self._lifeline is not None
        self.run.node_data(name).mkdir(parents=True, exist_ok=True)
        peers = {j: peer[j] if j == name else self.network.address(name, j) for j in self.nodes}
        launch = NodeLaunch(
            node=name,
            peers=peers,
            client_port=client_port,
            data_dir=self.run.node_data(name),
            events=self.run.node_events(name),
            log=self.run.node_log(name),
            cluster_id=f"splitbrain-{self.run.path.name}",
            lifeline_fd=self._lifeline.fd,
            unsafe=self.unsafe,
            extra_args=self.node_args,
        )
        output = self.run.node_dir(name) / "output.log"
        return _Node(name, self.target(launch), (peer[name][1], client_port), output)

    def _spawn(self, node: _Node) -> None:
        assert self._lifeline is not None
        node.proc = spawn(node.argv, self._lifeline, output=node.output)
        node.paused = False
        node.ended_by_us = False

    async def _wait_up(self, node: _Node) -> None:
        assert node.proc is not None
        await wait_listening(node.proc, node.ports, self.start_timeout, node.name, node.output)

    async def _all_up(self) -> None:
        """Wait for every node; the first failure cancels the other waits and is raised."""
        waits = [asyncio.create_task(self._wait_up(node)) for node in self._nodes.values()]
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for w in waits:
                w.cancel()
        for w in done:
            if not w.cancelled() and w.exception() is not None:
                raise w.exception()  # type: ignore[misc]

    def _node(self, name: str) -> _Node:
        try:
            return self._nodes[name]
        except KeyError:
            raise ValueError(f"unknown node {name!r} (nodes: {', '.join(self.nodes)})") from None

    # The verbs. Each returns whether it changed anything, so the nemesis can record the truth.

    async def kill(self, name: str) -> bool:
        """SIGKILL the node (paused or not) and reap it; False if it was not running."""
        node = self._node(name)
        if node.proc is None or not signal_proc(node.proc, signal.SIGKILL):
            return False
        node.paused = False
        node.ended_by_us = True
        if not await reap(node.proc, 10.0):
            raise NodeError(f"{name} (pid {node.proc.pid}) survived SIGKILL for 10s")
        return True

    async def pause(self, name: str) -> bool:
        node = self._node(name)
        if node.paused or node.proc is None or not signal_proc(node.proc, signal.SIGSTOP):
            return False
        node.paused = True
        return await wait_stopped(node.proc, True)

    async def resume(self, name: str) -> bool:
        node = self._node(name)
        if not node.paused or node.proc is None or not signal_proc(node.proc, signal.SIGCONT):
            return False
        node.paused = False
        return await wait_stopped(node.proc, False)

    async def start(self, name: str) -> bool:
        """Start the node if it is not running and wait until it listens; NodeError if it won't."""
        node = self._node(name)
        if running(node.proc):
            return False
        self._spawn(node)
        await self._wait_up(node)
        return True

    async def restart(self, name: str) -> None:
        await self.kill(name)
        await self.start(name)

    def alive(self, name: str) -> bool:
        return running(self._node(name).proc)

    def crashed(self, name: str) -> bool:
        """Has the node's process exited by itself, not killed or stopped by the cluster (until
        `start` runs it again)? Reaps it."""
        node = self._node(name)
        return node.proc is not None and not running(node.proc) and not node.ended_by_us

    def paused(self, name: str) -> bool:
        node = self._node(name)
        return node.paused and running(node.proc)

    def pids(self) -> dict[str, int]:
        """Running children by name ("proxies" for the proxy process): for tests and diagnostics."""
        out = {n: node.proc.pid for n, node in self._nodes.items() if running(node.proc)}
        if self._network is not None and running(self._network.proc):
            out["proxies"] = self._network.proc.pid
        return out

    # Teardown.

    def close(self) -> None:
        """Stop every node and the proxies, reap them, release the lifeline. Idempotent."""
        try:
            for node in self._nodes.values():
                node.ended_by_us |= running(node.proc)
            stop_all([n.proc for n in self._nodes.values() if n.proc is not None], grace=2.0)
            for node in self._nodes.values():
                node.paused = False
            if self._network is not None:
                self._network.close()
        finally:
            if self._lifeline is not None:
                self._lifeline.close()
                self._lifeline = None
            self._release_sigterm()

    def _catch_sigterm(self) -> None:
        """Turn SIGTERM into cancellation of the owning task so teardown runs, unless the
        program already handles SIGTERM itself."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        if task is None:
            return
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        self._sigterm_loop = loop

    def _release_sigterm(self) -> None:
        if self._sigterm_loop is not None:
            with contextlib.suppress(Exception):
                self._sigterm_loop.remove_signal_handler(signal.SIGTERM)
            self._sigterm_loop = None

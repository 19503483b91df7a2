"""Cluster: the node processes and the network of one run, with the verbs a nemesis needs.

    async with Cluster(run, ["n1", "n2", "n3"]) as cluster:
        await cluster.kill("n2"); await cluster.start("n2")
        await cluster.network.apply_grudge({"n1": {"n2", "n3"}})

Rules it keeps:
- What a node runs, when it is up, how to ask it who leads and how to arm its crash points come
  from the target (splitbrain/targets/); kill, pause and restart are the same for every target.
- Each node keeps its data, events and log under nodes/<node>/ in the run directory and its
  addresses for the whole run; a restart reuses all of them (that is what a crash is).
- Network mode `proxy`: each node gets a peer and a client port on 127.0.0.1, and node i reaches
  node j only through the link proxy i->j (network.py), so the network can be cut. Mode `netns`:
  each node runs in a network namespace of its own with its own address (netns.py), cut by
  nftables (firewall.py); the driver's thread enters the run's bridge namespace while the
  cluster is up, so clients reach the nodes' addresses.
- A secret made for this run (secret.py) is offered to every node (`NodeLaunch.secret_file`;
  the bundled Raft authenticates its peer links with it): a file in the run directory that
  only its owner can read, handed over by path and removed at teardown.
- Teardown always runs — normal end, exception, Ctrl-C (asyncio cancels the task), SIGTERM (if
  nobody else handles it, the owning task is cancelled) — and is synchronous so it cannot be cut
  short. Were the driver SIGKILLed, every child still dies: lifeline pipe + PR_SET_PDEATHSIG.
- Spawn happens on the event loop's thread (the parent-death signal is tied to that thread).
- A node that exits by itself (e.g. at a crash point it was asked to arm) is `crashed`: the
  cluster tells that apart from its own kill and teardown; `start` brings it back.
- With `clocks=True` every node runs under libfaketime (clocks.py) with a control file
  nodes/<node>/clock.rc: `set_clock` changes its clock's rate or makes it jump, `normal_clock`
  sets it back. A node's clock is one function of real time across its restarts: the control
  file is rewritten for each new life's start.
- With `disks=True` every node's data directory is a forgetful FUSE mount (disks.py), mounted
  before the nodes start and unmounted after they stop: `power_loss` is kill -9 plus forgetting
  what the node never synced, `set_disk_full` makes its writes fail with ENOSPC. `corrupt`
  flips a bit of a stopped node's files or cuts one short (damage.py), on the mount's backing
  tree if there is one, and `repair` undoes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

from splitbrain.cluster import clocks as clock_faults
from splitbrain.cluster import damage
from splitbrain.cluster.disks import Disks, NodeDisk
from splitbrain.cluster.firewall import NftNetwork
from splitbrain.cluster.lifeline import Lifeline
from splitbrain.cluster.network import Network
from splitbrain.cluster.ports import HOST, free_ports
from splitbrain.cluster.process import (
    NodeError,
    output_tail,
    reap,
    running,
    signal_proc,
    spawn,
    stop_all,
    wait_ready,
    wait_stopped,
)
from splitbrain.cluster.queries import NodeQueries
from splitbrain.cluster.secret import FILE_NAME as SECRET_FILE
from splitbrain.cluster.secret import write_secret
from splitbrain.cluster.targets import NodeLaunch
from splitbrain.store import RunDir
from splitbrain.targets import raft
from splitbrain.targets.readiness import probe
from splitbrain.targets.target import NETWORKS, Command, Target

NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
START_TIMEOUT = 30.0  # a node must be up within this; generous: 2 shared cores, cold imports
NETNS_PORTS = (2380, 2379)  # (peer, client) of every node in netns mode: each has its own address


@dataclass(slots=True)
class _Node:
    name: str
    launch: NodeLaunch
    command: Command
    output: Path  # its stdout and stderr
    netns: Path | None  # its network namespace (netns mode)
    clock: Path | None = None  # its libfaketime control file (clock faults)
    skew: clock_faults.Skew = field(default_factory=clock_faults.Skew)  # its clock
    started: float = 0.0  # real time its current life was spawned
    proc: psutil.Popen | None = None
    paused: bool = False
    ended_by_us: bool = False  # killed or stopped by the cluster, so its exit is no crash


class Cluster(NodeQueries):
    """Node processes and the network of one run; use as `async with`. The leader lookup,
    crash-point arming and leader watch come from NodeQueries (queries.py)."""

    def __init__(
        self,
        run: RunDir,
        nodes: Sequence[str],
        *,
        unsafe: Sequence[str] = (),
        node_args: Sequence[str] = (),
        target: Target | None = None,
        network: str = "proxy",
        seed: int = 0,
        start_timeout: float = START_TIMEOUT,
        clocks: bool = False,
        disks: bool = False,
    ) -> None:
        if not nodes:
            raise ValueError("a cluster needs at least one node")
        if len(set(nodes)) != len(nodes):
            raise ValueError(f"duplicate node names in {list(nodes)}")
        for n in nodes:
            if not NODE_NAME.fullmatch(n):
                raise ValueError(f"bad node name {n!r}: letters, digits, '_', '.', '-'")
        if network not in NETWORKS:
            raise ValueError(f"unknown network mode {network!r} (known: {', '.join(NETWORKS)})")
        self.run = run
        self.nodes = tuple(nodes)
        self.unsafe = tuple(unsafe)
        self.node_args = tuple(node_args)
        self.target = target if target is not None else raft.target({})
        self.network_mode = network
        self.seed = seed
        self.start_timeout = start_timeout
        self.clocks = clocks
        self.disks = disks
        self._disks: Disks | None = None
        self._full: set[str] = set()  # nodes whose disk is full
        self._damage: dict[str, damage.Damage] = {}  # the last damage done to each node
        self.client_addresses: dict[str, tuple[str, int]] = {}
        self._nodes: dict[str, _Node] = {}
        self._lifeline: Lifeline | None = None
        self._network: Network | NftNetwork | None = None
        self._sigterm_loop: asyncio.AbstractEventLoop | None = None
        self._secret: Path | None = None

    async def __aenter__(self) -> Cluster:
        self._lifeline = Lifeline()
        try:
            self._catch_sigterm()
            self._secret = write_secret(self.run.path / SECRET_FILE)
            if self.network_mode == "netns":
                peer_port, client_port = NETNS_PORTS
                net = await NftNetwork.start(self.nodes, peer_port, self._lifeline,
                                             log=self.run.path / "network.log")
                self._network = net
                net.namespaces.enter()
                peer = net.peers
                client = {n: (peer[n][0], client_port) for n in self.nodes}
            else:
                ports = free_ports(2 * len(self.nodes))
                peer = {n: (HOST, ports[i]) for i, n in enumerate(self.nodes)}
                client = {n: (HOST, ports[len(self.nodes) + i]) for i, n in enumerate(self.nodes)}
                self._network = await Network.start(
                    peer, self._lifeline, self.seed, output=self.run.path / "proxies.log",
                    framed=self.target.framed,
                )
            for n in self.nodes:
                self._nodes[n] = self._prepare(n, peer, client[n])
                self.client_addresses[n] = client[n]
            if self.disks:
                self._disks = await Disks.start(
                    {n: self._node_disk(n) for n in self.nodes}, self._lifeline,
                    {n: self.run.node_dir(n) / "disk.log" for n in self.nodes})
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
    def network(self) -> Network | NftNetwork:
        """The link proxies (network.py) or the nftables rules (firewall.py); there once the
        cluster is entered."""
        assert self._network is not None, "the cluster has not started"
        return self._network

    def _prepare(self, name: str, peer: dict[str, tuple[str, int]], client: tuple[str, int]
                 ) -> _Node:  # fmt: skip
        assert self._lifeline is not None
        self.run.node_data(name).mkdir(parents=True, exist_ok=True, mode=0o700)
        peers = {j: peer[j] if j == name else self.network.address(name, j) for j in self.nodes}
        launch = NodeLaunch(
            node=name,
            peers=peers,
            client_port=client[1],
            data_dir=self.run.node_data(name),
            events=self.run.node_events(name),
            log=self.run.node_log(name),
            cluster_id=f"splitbrain-{self.run.path.name}",
            lifeline_fd=self._lifeline.fd,
            unsafe=self.unsafe,
            extra_args=self.node_args,
            host=client[0],
            index=self.nodes.index(name) + 1,
            nodes=self.nodes,
            secret_file=self._secret,
        )
        output = self.run.node_dir(name) / "output.log"
        netns = self.network.namespaces.path(name) if isinstance(self.network, NftNetwork) else None
        clock = self.run.node_dir(name) / "clock.rc" if self.clocks else None
        return _Node(name, launch, self.target.command(launch), output, netns, clock)

    def _spawn(self, node: _Node) -> None:
        assert self._lifeline is not None
        cmd = node.command
        env = cmd.env
        node.started = time.time()
        if node.clock:
            clock_env, node.started = clock_faults.environment(node.clock, node.skew)
            env = {**env, **clock_env}
        node.proc = spawn(cmd.argv, self._lifeline, output=node.output, env=env, cwd=cmd.cwd,
                          netns=node.netns)  # fmt: skip
        node.paused = False
        node.ended_by_us = False

    async def _wait_up(self, node: _Node) -> None:
        assert node.proc is not None
        await wait_ready(node.proc, lambda: probe(self.target.ready, node.launch),
                         self.start_timeout, node.name, node.output)  # fmt: skip

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
        """Start the node if it is not running and wait until it is up; NodeError if it won't."""
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

    def exit_status(self, name: str) -> str | None:
        if not self.crashed(name):
            return None
        node = self._node(name)
        code = node.proc.returncode  # type: ignore[union-attr]
        how = f"exited with {code}" if code >= 0 else f"killed by signal {-code}"
        return how + output_tail(node.output)

    def paused(self, name: str) -> bool:
        node = self._node(name)
        return node.paused and running(node.proc)

    def pids(self) -> dict[str, int]:
        """Running children by name ("proxies" for the proxy process, "keeper" for the netns
        keeper, "disk-<node>" for disk daemons): for tests and diagnostics."""
        out = {n: node.proc.pid for n, node in self._nodes.items() if running(node.proc)}
        if self._network is not None and running(self._network.proc):
            name = "keeper" if isinstance(self._network, NftNetwork) else "proxies"
            out[name] = self._network.proc.pid  # type: ignore[union-attr]
        if self._disks is not None:
            out.update({f"disk-{n}": pid for n, pid in self._disks.pids().items()})
        return out

    async def set_clock(self, name: str, rate: float | None = None, jump: float = 0.0) -> bool:
        """Make the node's clock run at `rate` (None: as it does) and jump by `jump` seconds,
        from the next whole second on (clocks.change), running or not (a restart keeps its
        clock); False if that changes nothing. ValueError if the cluster has no clocks."""
        node = self._node(name)
        if node.clock is None:
            raise ValueError("the cluster was started without clock faults")
        if (rate is None or rate == node.skew.rate) and not jump:
            return False
        node.skew = clock_faults.change(node.skew, time.time(), rate, jump)
        clock_faults.write(node.clock, node.skew, node.started)
        return True

    async def normal_clock(self, name: str) -> bool:
        """The node's clock at the normal rate, its jumps taken back (what rates made it gain
        or lose stays: the clock never jumps for a rate); False if it was normal."""
        skew = self._node(name).skew
        return await self.set_clock(name, clock_faults.NORMAL, -skew.shift)

    def skewed(self) -> list[str]:
        """The nodes whose clock is not normal: another rate, or jumps not taken back."""
        return [n.name for n in self._nodes.values() if not n.skew.normal]

    def _node_disk(self, name: str) -> NodeDisk:
        return NodeDisk.under(self.run.node_dir(name), self.run.node_data(name))

    def _mounted(self) -> Disks:
        if self._disks is None:
            raise ValueError("the cluster was started without disk faults")
        return self._disks

    async def power_loss(self, name: str) -> dict[str, int] | bool:
        """The node's machine loses power: kill -9, then its disk forgets every write and entry
        change it never synced. Returns what was forgotten (files, bytes, entries); False if it
        was not running (nothing forgotten, as in the simulator)."""
        disks = self._mounted()
        if not await self.kill(name):
            return False
        return await disks.power_loss(name)

    async def set_disk_full(self, name: str, full: bool) -> bool:
        """Make the node's writes fail with ENOSPC (or stop that); False if it was so already."""
        disks = self._mounted()
        if (name in self._full) == full:
            return False
        await disks.set_full(name, full)
        (self._full.add if full else self._full.discard)(name)
        return True

    def full_disks(self) -> list[str]:
        return sorted(self._full)

    async def corrupt(self, name: str, seed: int) -> dict[str, Any]:
        """Damage a file of the node, which must not be running, as drawn from `seed` (a bit
        flipped or the file cut short); returns what was done ({"file": None} if it had
        nothing to damage)."""
        if self.alive(name):
            raise ValueError(f"{name} is running: only a stopped node's files are damaged")
        done = damage.damage(self._media(name), seed)
        if done is None:
            return {"file": None}
        self._damage[name] = done
        return done.to_json()

    async def repair(self, name: str) -> bool:
        """Undo the last damage done to the node (it must not be running); False if none."""
        done = self._damage.pop(name, None)
        if done is None or self.alive(name):
            return False
        damage.repair(damage.Files(self._media(name)), done)
        return True

    def _media(self, name: str) -> Path:
        """Where the node's files really are: the mount's backing tree, or its data directory."""
        return self._node_disk(name).tree if self.disks else self.run.node_data(name)

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
            if self._disks is not None:  # once no node has a file open there
                self._disks.close()
                self._disks = None
        finally:
            if self._lifeline is not None:
                self._lifeline.close()
                self._lifeline = None
            if self._secret is not None:  # useless once the nodes are gone: leave no key around
                self._secret.unlink(missing_ok=True)
                self._secret = None
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

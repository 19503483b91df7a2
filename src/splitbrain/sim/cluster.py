"""SimCluster: the bundled Raft's nodes and link proxies as simulated processes of one World.

    async with SimCluster(world, run, ["n1", "n2", "n3"], unsafe=..., seed=...) as cluster:
        await cluster.kill("n2"); await cluster.start("n2")
        await cluster.network.apply_grudge({"n1": {"n2", "n3"}})

The same interface the nemesis and the interpreter use on a real cluster (cluster/cluster.py,
nemesis/control.py), over the same code: each node is `raft.command.serve` (the Server, its
Ready loop, WAL, sessions, crash points) in a simulated process, configured by parsing the very
argv `cluster.targets.bundled_raft` builds for a real node; the links are `cluster.proxy`
LinkProxy objects hosted by `proxy_process.ProxyHost` in a "proxies" process, driven through
`cluster.network.Links`; leader lookups and crash points go through the client API
(`cluster.queries.NodeQueries`). Rules it keeps, as the real cluster does:
- A node keeps its ports, its disk (the page cache survives kill -9) and its files across
  restarts; it gets a fresh process, pid, rng and memory each time.
- `start` waits until the node listens on its peer and client ports (NodeError with the end of
  its output.log if it exits first, or if it does not listen within START_TIMEOUT); `kill` is
  kill -9; `pause`/`resume` are SIGSTOP/SIGCONT; a node that ended by itself (a crash point)
  is `crashed` until started again.
- `corrupt` flips a bit of a stopped node's files or cuts one short as on a real node
  (damage.py through disk.py), `repair` undoes it; `set_disk_full` fails the node's writes
  with ENOSPC (disk.py), `power_loss` kills it and forgets what it never synced.
- A node's clock (the clock fault) is a function of virtual time (clocks.Skew) that its every
  life reads (loop.set_clock); a change takes effect at once (no libfaketime to wait for).
  Its events are stamped with the clock no fault skews (World.event_ns): the checkers compare
  event times across nodes, which only a simulator can make exact under clock faults.
- Teardown is graceful (as SIGTERM): paused nodes resume, every node stops, then the proxies;
  the disks are written out to nodes/<node>/data/.
Paths given to the nodes are relative to the run directory (nodes/n1/data, ...), so nothing a
node logs depends on where the run directory is.
"""

from __future__ import annotations

import asyncio
import hashlib
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from splitbrain.cluster.clocks import NORMAL, Skew
from splitbrain.cluster.cluster import NODE_NAME
from splitbrain.cluster.damage import Damage
from splitbrain.cluster.network import Links, checked
from splitbrain.cluster.ports import HOST
from splitbrain.cluster.process import NodeError
from splitbrain.cluster.proxy_process import ProxyHost
from splitbrain.cluster.queries import NodeQueries
from splitbrain.cluster.targets import NodeLaunch
from splitbrain.raft import command
from splitbrain.raft.host import NodeHost, Observer
from splitbrain.raft.server import NodeConfig, log
from splitbrain.raft.wal import WALError
from splitbrain.sim.disk import DiskFiles, SimDisk
from splitbrain.sim.loop import ENDED, PAUSED, Process
from splitbrain.sim.world import World, node_random
from splitbrain.store import RunDir
from splitbrain.targets import raft

PEER_PORT, CLIENT_PORT = 7001, 8001  # node i listens on PEER_PORT + i and CLIENT_PORT + i
CLUSTER_ID = "splitbrain-sim"
# Virtual seconds for a node to listen: one boots in well under a second of virtual time; one
# that does not listen by then was paused while it started (the nemesis can do that).
START_TIMEOUT = 5.0
STOP_TIMEOUT = 2.0  # virtual seconds for a node to stop when told, before it is killed
POLL = 0.001
# The WAL preallocates 8 MiB at a time so that a real fdatasync changes no metadata; a simulated
# disk has no journal, and reading megabytes of zeros at every restart only costs time.
PREALLOCATE = 64 * 1024


class SimNetwork(Links):
    """The link proxies, hosted in the simulated proxies process (see cluster/network.py)."""

    def __init__(self, nodes: Sequence[str], proc: Process, host: ProxyHost) -> None:
        super().__init__(nodes)
        self._proc = proc
        self._host = host

    async def _request(self, request: dict) -> dict:
        return checked(request["op"], await self._proc.spawn(self._host.answer(request)))


@dataclass(eq=False)
class _Node:
    name: str
    config: NodeConfig
    disk: SimDisk
    log: IO[str]
    output: IO[str]
    proc: Process | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    main: asyncio.Task[None] | None = None
    lives: int = 0
    ended_by_us: bool = False
    skew: Skew | None = None  # its clock across its lives; None: the loop's (clock faults)
    damage: Damage | None = None  # the last damage the corrupt fault did to its files


class SimCluster(NodeQueries):
    def __init__(
        self,
        world: World,
        run: RunDir,
        nodes: Sequence[str],
        *,
        unsafe: Sequence[str] = (),
        node_args: Sequence[str] = (),
        seed: int = 0,
        observer: Observer | None = None,
    ) -> None:
        for n in nodes:
            if not NODE_NAME.fullmatch(n):
                raise ValueError(f"bad node name {n!r}: letters, digits, '_', '.', '-'")
        self.world = world
        self.run = run
        self.nodes = tuple(nodes)
        self.unsafe = tuple(unsafe)
        self.node_args = tuple(node_args)
        self.seed = seed
        self.observer = observer
        self.target = raft.target({})
        # The run's peer-link secret (a real run writes a random one to a file; auth.py): here
        # derived from the seed, so that the hellos, their MACs included, replay byte for byte.
        self._secret = hashlib.sha256(f"splitbrain-sim:{seed}".encode()).hexdigest().encode()
        self.client_addresses = {n: (HOST, CLIENT_PORT + i) for i, n in enumerate(self.nodes)}
        self._peers = {n: (HOST, PEER_PORT + i) for i, n in enumerate(self.nodes)}
        self.disks = {n: SimDisk() for n in self.nodes}
        self._nodes: dict[str, _Node] = {}
        self._files: dict[Path, IO[str]] = {}  # real files of the run directory, by relative path
        self._network: SimNetwork | None = None
        self._proxies: ProxyHost | None = None
        self._proxies_proc: Process | None = None

    @property
    def network(self) -> SimNetwork:
        assert self._network is not None, "the cluster has not started"
        return self._network

    async def __aenter__(self) -> SimCluster:
        self._proxies_proc = self.world.loop.process("proxies")
        self._proxies = ProxyHost(self.seed)
        self._network = SimNetwork(self.nodes, self._proxies_proc, self._proxies)
        await self._network._open(self._peers)
        for n in self.nodes:
            self._nodes[n] = self._prepare(n)
        await asyncio.gather(*(self.start(n) for n in self.nodes))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:  # fmt: skip
        await self.close()

    def _prepare(self, name: str) -> _Node:
        rel = RunDir(Path("."))
        peers = {j: self._peers[j] if j == name else self.network.address(name, j)
                 for j in self.nodes}  # fmt: skip
        launch = NodeLaunch(
            node=name, peers=peers, client_port=self.client_addresses[name][1],
            data_dir=rel.node_data(name), events=rel.node_events(name), log=rel.node_log(name),
            cluster_id=CLUSTER_ID, lifeline_fd=-1, unsafe=self.unsafe, extra_args=self.node_args,
        )  # fmt: skip
        config = raft.node_config(launch)
        config = replace(config, secret=self._secret)  # peer links authenticated, as in a run
        return _Node(name, config, self.disks[name], self._file(rel.node_log(name)),
                     self._file(rel.node_dir(name) / "output.log"))  # fmt: skip

    def _file(self, rel: Path) -> IO[str]:
        f = self._files.get(rel)
        if f is None:
            path = self.run.path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            f = self._files[rel] = path.open("a", encoding="utf-8")
        return f

    def _node(self, name: str) -> _Node:
        try:
            return self._nodes[name]
        except KeyError:
            raise ValueError(f"unknown node {name!r} (nodes: {', '.join(self.nodes)})") from None

    # The verbs (nemesis/control.py). Each returns whether it changed anything.

    async def start(self, name: str) -> bool:
        node = self._node(name)
        if node.proc is not None and node.proc.alive:
            return False
        node.lives += 1
        proc = node.proc = self.world.loop.process(name)
        proc.log, proc.output = node.log, node.output
        if node.skew is not None:
            self.world.loop.set_clock(proc, node.skew)
        node.ended_by_us = False
        node.stop = asyncio.Event()
        host = NodeHost(
            files=DiskFiles(node.disk, proc, self._file),
            clock=self.world.event_ns,
            event_clock=self.world.event_ns,  # the simulated machine's: no clock fault skews it
            events_unskewed=True,
            die=proc.die,
            pid=self.world.next_pid(),
            rng=node_random(f"{self.seed}:{name}:{node.lives}", self.world.physics.timeouts),
            observer=self.observer,
            preallocate=PREALLOCATE,
        )
        node.main = proc.spawn(self._main(node, proc, host), name=f"{name}-main")
        await self._wait_up(node, proc)
        return True

    async def kill(self, name: str) -> bool:
        node = self._node(name)
        if node.proc is None or not node.proc.kill():
            return False
        node.ended_by_us = True
        return True

    async def set_clock(self, name: str, rate: float | None = None, jump: float = 0.0) -> bool:
        """The node's clock runs at `rate` (None: as it does) and jumps by `jump` seconds from
        now on, across restarts; False if that changes nothing."""
        node = self._node(name)
        skew = node.skew or Skew()
        if (rate is None or rate == skew.rate) and not jump:
            return False
        node.skew = skew.moved(self.world.loop.time(), rate, jump)
        if node.proc is not None and node.proc.alive:
            self.world.loop.set_clock(node.proc, node.skew)
        return True

    async def normal_clock(self, name: str) -> bool:
        skew = self._node(name).skew
        return skew is not None and await self.set_clock(name, NORMAL, -skew.shift)

    def skewed(self) -> list[str]:
        return [n.name for n in self._nodes.values() if n.skew is not None and not n.skew.normal]

    async def power_loss(self, name: str) -> bool:
        """The node's machine loses power: its process dies (as kill) and its disk keeps only
        what was fsynced (disk.py). For the nemesis's `power-loss` fault (issue 12); False if
        the node was not running."""
        killed = await self.kill(name)
        if killed:
            self._node(name).disk.power_loss()
        return killed

    async def set_disk_full(self, name: str, full: bool) -> bool:
        """Make the node's disk fail writes with ENOSPC (or stop that), as the `disk-full`
        fault does through FUSE in real runs; False if it was so already."""
        disk = self._node(name).disk
        if disk.full == full:
            return False
        disk.full = full
        return True

    def full_disks(self) -> list[str]:
        return [n.name for n in self._nodes.values() if n.disk.full]

    async def corrupt(self, name: str, seed: int) -> dict[str, Any]:
        """Damage a file of the stopped node as drawn from `seed` on a real node (damage.py: a
        bit flipped or the file cut short); returns what was done ({"file": None} if it had
        nothing to damage)."""
        if self.alive(name):
            raise ValueError(f"{name} is running: only a stopped node's files are damaged")
        node = self._node(name)
        done = node.disk.damage(node.config.data_dir, seed)
        if done is None:
            return {"file": None}
        node.damage = done
        return done.to_json()

    async def repair(self, name: str) -> bool:
        """Undo the last damage done to the node (it must not be running); False if none."""
        node = self._node(name)
        done, node.damage = node.damage, None
        if done is None or self.alive(name):
            return False
        node.disk.repair(node.config.data_dir, done)
        return True

    async def pause(self, name: str) -> bool:
        proc = self._node(name).proc
        return proc is not None and proc.pause()

    async def resume(self, name: str) -> bool:
        proc = self._node(name).proc
        return proc is not None and proc.resume()

    async def restart(self, name: str) -> None:
        await self.kill(name)
        await self.start(name)

    def alive(self, name: str) -> bool:
        proc = self._node(name).proc
        return proc is not None and proc.alive

    def paused(self, name: str) -> bool:
        proc = self._node(name).proc
        return proc is not None and proc.state is PAUSED

    def crashed(self, name: str) -> bool:
        node = self._node(name)
        proc = node.proc
        return (proc is not None and not proc.alive and not node.ended_by_us
                and proc.exited != ENDED)  # a simulation stopped by its budget: not a crash

    def exit_status(self, name: str) -> str | None:
        if not self.crashed(name):
            return None
        node = self._node(name)
        assert node.proc is not None  # crashed
        node.output.flush()
        # Not process.output_tail: that names the file's path, and a replay writes elsewhere
        # (the history must come out byte for byte the same).
        lines = (self.run.node_dir(name) / "output.log").read_text().strip().splitlines()[-5:]
        return f"{node.proc.exited}" + (f" ({' | '.join(lines)})" if lines else "")

    # A node's life.

    async def _main(self, node: _Node, proc: Process, host: NodeHost) -> None:
        await asyncio.sleep(self.world.boot_delay())  # the interpreter starting, imports
        try:
            await command.serve(node.config, node.stop, host)
        except (OSError, WALError) as exc:  # as `splitbrain node` says it (raft/command.py)
            log.error("cannot serve: %s", exc)
            node.output.write(f"splitbrain node: error: {exc}\n")
            proc.exit("exited 3")
        except Exception:
            log.exception("node crashed")
            node.output.write(traceback.format_exc())
            proc.exit("crashed")
        else:
            proc.exit("exited 0")

    async def _wait_up(self, node: _Node, proc: Process) -> None:
        net = self.world.net
        addrs = (self._peers[node.name], self.client_addresses[node.name])
        deadline = self.world.loop.time() + START_TIMEOUT
        while not all(net.listening(addr, proc) for addr in addrs):
            if not proc.alive:
                node.output.flush()
                tail = (self.run.node_dir(node.name) / "output.log").read_text()[-2000:]
                raise NodeError(f"{node.name} {proc.exited} while starting; its output:\n{tail}",
                                refused=(proc.exited or "").startswith(("exited", "crashed")))
            if self.world.loop.time() > deadline:
                raise NodeError(f"{node.name} did not listen within {START_TIMEOUT} s")
            await asyncio.sleep(POLL)

    # Teardown.

    async def close(self) -> None:
        """Stop every node as SIGTERM would, then the proxies; write the disks out."""
        running = [n for n in self._nodes.values() if n.proc is not None and n.proc.alive]
        for node in running:
            assert node.proc is not None
            node.ended_by_us = True
            node.proc.resume()
            node.stop.set()
        mains = [n.main for n in running if n.main is not None]
        if mains:
            await asyncio.wait(mains, timeout=STOP_TIMEOUT)
        for node in running:
            assert node.proc is not None
            node.proc.kill()
        proxies = self._proxies_proc
        if self._proxies is not None and proxies is not None and proxies.alive:
            await proxies.spawn(self._proxies.close())
            proxies.kill()
        for f in self._files.values():
            f.close()
        self._files.clear()
        for disk in self.disks.values():
            disk.write_out(self.run.path)

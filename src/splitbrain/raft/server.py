"""One node of the bundled Raft key-value server: the asyncio runtime around the pure core.

Everything here runs on one event loop thread and drives the core one Ready at a time: write
hard state + entries with ONE fsync per batch, send messages, apply committed entries (events,
client replies), serve read states, advance(). The fsync runs in a worker thread while the loop
keeps reading and stepping, so everything that arrives meanwhile is batched into the next one.
Two etcd-style overlaps keep it fast without weakening what the Ready order protects: messages
that promise nothing about our disk leave before the fsync (`_MUST_WAIT`), and committed
entries, already durable on a quorum, are applied while our own disk syncs the new ones.

Rules it keeps:
- Peer links (DESIGN.md): node i writes only on its own outbound connection to j, whose first
  frame is a hello (cluster, i, j); inbound connections are read-only and refused on a wrong
  cluster, sender or receiver, and, when the node has the cluster's secret, on a hello without
  a valid, fresh MAC (auth.py). Outbound links reconnect with capped exponential backoff; while
  a link is down or its buffer is full, messages to it are dropped (Raft retransmits).
- Nothing a connection sends reaches the core or the disk unless it decodes (codec.py refuses
  out-of-range counters and inconsistent lengths) and validates; a bad frame is one warning line
  and a closed connection. What connections hold in memory is bounded (buffers.py).
- Client answers: `not-leader` only before anything was appended; a proposal whose leader lost
  leadership before its entry was applied is answered `leader-lost` (indeterminate); a proposal
  is `ok` only when an entry at its index with its term is applied. Apply events are flushed
  before the replies they justify leave.
- Reads are linearizable by ReadIndex on the leader, batched into one quorum round, unless
  `--unsafe stale-reads` (any node answers from its local state at once). With `--read-mode
  lease` the leader serves them at once while its lease lasts (raft.py): safe only while the
  nodes' clocks run at one rate.
- Time: the event loop's clock is the node's one clock (timers, ticks); the operating system's
  monotonic clock on a real node, which libfaketime skews under clock faults, and the
  simulator's virtual clock in a simulation. With leases the ticks follow it exactly: every
  tick due is ticked, also the ones a busy or paused process missed, before a lease is judged.
- `--unsafe ack-before-fsync`: a Ready is written (to the page cache) and everything it says
  leaves at once — append acknowledgements, votes, the leader counting its own entries — while
  the fsync follows on a timer (_UNSAFE_SYNC_DELAY). A kill -9 loses nothing of it; a power
  loss does. The durability invariants are told the truth as the node believes it (written =
  durable), so only a power loss shows the lie.
- Crash points (crashpoints.py), armed by a client request, are checked in the Ready loop: the
  node logs the point, flushes a `crash` event and SIGKILLs itself. Unarmed, they cost an
  attribute check per Ready.
- White-box invariants (durability.py) are checked as it runs: no message promises what is
  not durable, the commit index never goes backwards, and no leader makes it overwrite an
  entry it knows committed (the core's LogCorruption). A broken one is logged and written
  as an `invariant` event; the node goes on. `recovered` (what a life starts from) and
  `persisted` (a new term or vote is durable) events let the checker compare lives.
- Snapshots (`--snapshot-every N`, default SNAPSHOT_EVERY, 0 = never): after a Ready, once N
  entries were applied since
  the last snapshot, the state machine (data and sessions, kv.py) is written to
  `DATA_DIR/snapshot` (snapshot.py: atomic, durable, checksummed), THEN the WAL is compacted
  to the entries after it, then the core forgets them; a snapshot a leader sends is persisted
  the same way before anything of its Ready leaves. Each writes a `snapshot` event (index,
  term, digest of the state, taken or installed). A restart loads the snapshot, then replays
  the WAL's tail (`wal.after_snapshot`: what a crash between the two steps leaves is the same
  log, and `snapshot.resume` finishes the compaction before anything is appended). Not with
  `--unsafe ack-before-fsync` while its timer's sync is in flight.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from zlib import crc32

from splitbrain.raft import auth, codec, crashpoints, kv, snapshot
from splitbrain.raft.buffers import MAX_UNSENT, BufferBudget
from splitbrain.raft.durability import PROMISES, Durability
from splitbrain.raft.events import EventLog, term_runs
from splitbrain.raft.host import NodeHost
from splitbrain.raft.messages import (
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Ready,
    Snapshot,
)
from splitbrain.raft.raft import MAX_MSG_ENTRIES, SNAPSHOT_CHUNK
from splitbrain.raft.raft import UNSAFE_FLAGS as CORE_UNSAFE
from splitbrain.raft.rawnode import Config, LogCorruption, NotLeader, RawNode
from splitbrain.raft.wal import WAL, Recovered

RUNTIME_UNSAFE = frozenset({"stale-reads", "no-vote-persist", "ack-before-fsync"})
UNSAFE_FLAGS = RUNTIME_UNSAFE | CORE_UNSAFE

# When a Ready changes the term or vote, every message waits for the fsync. Otherwise only the
# new entries are being synced, and the one message that promises them is an append response:
# a leader's appends and heartbeats may leave before its own fsync, because it counts its own
# entries toward a commit only once they are durable (Raft thesis §10.2.1), and heartbeat
# responses (ReadIndex acknowledgements) and vote refusals say nothing about the log.
_MUST_WAIT = MessageType.APP_RESP
# --unsafe ack-before-fsync syncs this long after a write, as logs synced on a timer do (Redis's
# appendfsync everysec, MongoDB's journal commit interval), so acknowledged entries stay
# unsynced for up to this long.
_UNSAFE_SYNC_DELAY = 1.0
_MAX_LINK_BUFFER = 4 * 1024 * 1024  # bytes queued on a link before we drop instead
_BACKOFF_MIN, _BACKOFF_MAX = 0.01, 0.2  # seconds between reconnection attempts
_CONNECT_TIMEOUT = 0.5
_STABLE_LINK = 1.0  # seconds a connection must last before a loss resets the backoff
_HELLO_TIMEOUT = 10.0  # seconds an inbound peer connection may take to say hello
# Applied entries between snapshots by default: a restart replays at most this many entries
# plus what came after the snapshot, and the log on disk and in memory stays as short.
SNAPSHOT_EVERY = 1000

log = logging.getLogger("splitbrain.node")


@dataclass(frozen=True, slots=True)
class NodeConfig:
    id: str
    cluster: dict[str, tuple[str, int]]  # own entry: where to listen; others: where to connect
    client_port: int
    data_dir: Path
    events_path: Path
    cluster_id: str = "splitbrain"
    tick_ms: float = 10.0
    election_tick: int = 15
    heartbeat_tick: int = 1
    unsafe: frozenset[str] = frozenset()
    fsync: bool = True
    read_mode: str = "index"  # raft.READ_MODES: ReadIndex, or leader leases
    secret: bytes | None = None  # the cluster's peer-link secret (auth.py); None: no checks
    snapshot_every: int = SNAPSHOT_EVERY  # applied entries between snapshots; 0: never
    max_msg_entries: int = MAX_MSG_ENTRIES  # entries per AppendEntries message
    snapshot_chunk: int = SNAPSHOT_CHUNK  # snapshot bytes per InstallSnapshot message


@dataclass(slots=True)
class _Proposal:
    term: int
    conn: _ClientConnection
    seq: int


@dataclass(slots=True)
class _Read:
    conn: _ClientConnection
    seq: int
    f: str
    key: str
    asked: int  # the event clock when it arrived
    term: int = 0  # the term its ReadIndex round started in: the one that confirms it


class Server:
    """A node: `await Server(config).run(stop)` serves until `stop` is set. `host` is what it
    takes from its machine (host.py): the operating system unless the simulator runs it."""

    def __init__(self, config: NodeConfig, host: NodeHost | None = None) -> None:
        host = host or NodeHost()
        self.config = config
        self.id = config.id
        self._die = host.die
        self._observer = host.observer
        self.clock = host.clock  # the node's wall clock, ns: hello stamps (auth.py)
        self.events = EventLog(config.events_path, clock=host.event_clock,
                               file=host.files.append(config.events_path))  # fmt: skip
        self.events.emit("start", node=config.id, pid=host.process_id(),
                         clock="machine" if host.events_unskewed else "node")
        self.wal, recovered = WAL.open(config.data_dir, fsync=config.fsync, files=host.files,
                                       preallocate=host.preallocate)
        if recovered.truncated_bytes:
            log.warning("discarded a torn tail of %d bytes from the log", recovered.truncated_bytes)
        self.kv = kv.KV()
        snap, entries = self._load_snapshot(host, recovered)
        hard_state = recovered.hard_state
        if "no-vote-persist" in config.unsafe and hard_state.vote is not None:
            log.warning("unsafe no-vote-persist: forgetting my vote for %s", hard_state.vote)
            hard_state = HardState(term=hard_state.term, vote=None, commit=hard_state.commit)
        base = snap.index if snap else 0
        last = entries[-1].index if entries else base
        if hard_state.commit > last:  # only entries a snapshot's log conflicts with were lost
            hard_state = HardState(term=hard_state.term, vote=hard_state.vote, commit=last)
        log.info(
            "recovered term %d vote %s commit %d, %d entries after snapshot %d",
            hard_state.term,
            hard_state.vote,
            hard_state.commit,
            len(entries),
            base,
        )
        if self._observer:
            self._observer.recovered(config.id, hard_state, entries, base)
        self.events.emit("recovered", term=hard_state.term, vote=hard_state.vote,
                         commit=hard_state.commit, last=last, terms=term_runs(entries),
                         **({"snapshot": base, "snapshot_term": snap.term} if snap else {}))
        self.durable = Durability(hard_state, last)
        core = Config(
            id=config.id,
            peers=tuple(config.cluster),
            election_tick=config.election_tick,
            heartbeat_tick=config.heartbeat_tick,
            read_mode=config.read_mode,
            max_msg_entries=config.max_msg_entries,
            snapshot_chunk=config.snapshot_chunk,
            unsafe=config.unsafe & CORE_UNSAFE,
            snapshot_check=_snapshot_check,
        )
        rng = host.random(config.id)
        self.node = RawNode(core, hard_state=hard_state, entries=entries, rng=rng, snapshot=snap)
        self.role = "follower"
        self.events.emit("role", role=self.role, term=hard_state.term)
        self.events.flush()
        self.stale_reads = "stale-reads" in config.unsafe
        self.ack_before_fsync = "ack-before-fsync" in config.unsafe
        self._background_sync: asyncio.Task[None] | None = None  # ack-before-fsync only
        self._unsynced = False  # written since the background sync began
        self._links = {
            peer: _PeerLink(self, peer, addr)
            for peer, addr in config.cluster.items()
            if peer != self.id
        }
        self._proposals: dict[int, _Proposal] = {}
        self._new_reads: list[_Read] = []
        self._reads_by_ctx: dict[bytes, list[_Read]] = {}
        self._reads_at: list[tuple[int, list[_Read]]] = []  # (read index, reads) to serve
        self._read_round = 0
        self._lease = config.read_mode == "lease"
        self._ticks = 0  # ticks given to the core
        self._epoch = 0.0  # loop time of tick 0
        self._applied = base  # index of the last entry applied to self.kv
        self._files = host.files
        self._fsyncs = self._synced_entries = 0  # for the node log: how well batching works
        self._term_vote = (hard_state.term, hard_state.vote)  # as last handed to the WAL
        self._wake = asyncio.Event()
        self._stopping = False
        self.crash_point: str | None = None  # armed by a client: see crashpoints.py
        self.buffers = BufferBudget()  # held by clients and unauthenticated peers
        self.replays = auth.ReplayGuard()
        self._vote_sent = False  # a granted vote response was written in this Ready (if armed)

    def _load_snapshot(self, host: NodeHost, recovered: Recovered) -> tuple[Snapshot | None,
                                                                       list[Entry]]:
        """The snapshot this life starts from (the state machine restored from it) and the
        log entries after it. WALError (a SnapshotError) if the two cannot be one log."""
        data_dir = self.config.data_dir
        loaded, entries = snapshot.resume(host.files, data_dir, self.wal, recovered)
        if loaded is None:
            return None, entries
        decoded, data = loaded
        try:
            self.kv = kv.KV.restore(decoded.body)
        except kv.CommandError as exc:
            raise snapshot.SnapshotError(f"{data_dir / snapshot.FILE_NAME}: offset 0: "
                                         f"{exc}") from None
        log.info("loaded the snapshot of entry %d (term %d, %d bytes)", decoded.index,
                 decoded.term, len(data))
        return Snapshot(decoded.index, decoded.term, data), entries

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set; an error in the Ready loop ends the node (re-raised)."""
        loop = asyncio.get_running_loop()
        host, port = self.config.cluster[self.id]
        peer_server = await loop.create_server(
            lambda: _PeerInbound(self), host, port, reuse_address=True
        )
        client_server = await loop.create_server(
            lambda: _ClientConnection(self), host, self.config.client_port, reuse_address=True
        )
        log.info(
            "listening: peers on %s:%d, clients on %s:%d", host, port, host, self.config.client_port
        )
        tasks = [asyncio.create_task(link.run()) for link in self._links.values()]
        tasks.append(asyncio.create_task(self._ticker()))
        ready_loop = asyncio.create_task(self._ready_loop())
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([ready_loop, stopped], return_when=asyncio.FIRST_COMPLETED)
        finally:
            log.info("stopping: %d fsyncs for %d entries", self._fsyncs, self._synced_entries)
            self._stopping = True
            self._wake.set()
            for task in (*tasks, stopped):
                task.cancel()
            await asyncio.gather(*tasks, stopped, return_exceptions=True)
            await asyncio.wait([ready_loop])  # it finishes its Ready: no fsync left in flight
            if self._background_sync is not None:
                await asyncio.wait([self._background_sync])
            for srv in (peer_server, client_server):
                srv.close()
            for link in self._links.values():
                link.close()
            self.wal.close()
            self.events.close()
        ready_loop.result()  # re-raise a crash of the Ready loop

    async def _ticker(self) -> None:
        interval = self.config.tick_ms / 1000
        if self._lease:
            loop = asyncio.get_running_loop()
            self._epoch = loop.time()
            while True:
                await asyncio.sleep(self._epoch + (self._ticks + 1) * interval - loop.time())
                self._catch_up()
                self._wake.set()
        while True:
            await asyncio.sleep(interval)
            self.node.tick()
            self._wake.set()

    def _catch_up(self) -> None:
        """Tick the core up to the clock: a lease is judged against ticks that are due."""
        elapsed = (asyncio.get_running_loop().time() - self._epoch) * 1000 / self.config.tick_ms
        due = math.floor(elapsed + 1e-6)  # a timer exactly at a tick's instant (the simulator's)
        while self._ticks < due:
            self._ticks += 1
            self.node.tick()

    # -- inputs ------------------------------------------------------------------------------

    def on_message(self, msg: Message) -> None:
        try:
            self.node.step(msg)
        except LogCorruption as exc:  # only reachable with --unsafe flags (or a bug)
            log.error("refused %s from %s: %s", msg.type.name, msg.src, exc)
            self._check({"rule": "overwrite-committed", "index": exc.index, "from": exc.leader,
                         "term": msg.term})
        self._wake.set()

    def on_request(self, conn: _ClientConnection, req: dict[str, Any]) -> None:
        seq = req.get("seq")
        f = req.get("f")
        if f == "status":
            conn.reply({"seq": seq, "ok": True, "status": asdict(self.node.status())})
            return
        if f == "crash-point":
            self._arm(conn, seq, req.get("value"))
            return
        cid, key, value = req.get("cid"), req.get("key"), req.get("value")
        try:
            if not isinstance(cid, str) or not isinstance(seq, int):
                raise kv.CommandError("a request needs a string cid and an integer seq")
            kv.validate(f, key, value)  # type: ignore[arg-type]
        except kv.CommandError as exc:
            conn.reply({"seq": seq, "ok": False, "error": "bad-request", "message": str(exc)})
            return
        if f in kv.READS:
            asked = self.events.now()  # before the read is registered (checker/read_safety.py)
            if self.stale_reads:
                self.events.read(asked, self.node.status().term, self._applied)
                conn.reply({"seq": seq, "ok": True, "value": self.kv.read(f, key).value})
            else:
                self._new_reads.append(_Read(conn, seq, f, key, asked))
                self._wake.set()
            return
        data = kv.encode_command(kv.Command(cid, seq, f, key, value))  # type: ignore[arg-type]
        if len(data) > kv.MAX_COMMAND:
            message = f"the command is {len(data)} bytes, over the {kv.MAX_COMMAND}-byte limit"
            conn.reply({**_error(seq, "value-too-large"), "message": message})
            return
        try:
            index, term = self.node.propose(data)
        except NotLeader as exc:
            conn.reply({"seq": seq, "ok": False, "error": "not-leader", "leader": exc.leader_hint})
            return
        replaced = self._proposals.get(index)
        if replaced is not None:  # we lost and regained leadership between two Readies
            replaced.conn.reply(_error(replaced.seq, "leader-lost"))
        self._proposals[index] = _Proposal(term, conn, seq)
        self._wake.set()

    def _arm(self, conn: _ClientConnection, seq: Any, point: object) -> None:
        try:
            self.crash_point = crashpoints.validate(point)
        except ValueError as exc:
            conn.reply({"seq": seq, "ok": False, "error": "bad-request", "message": str(exc)})
            return
        log.info("crash point %s", "disarmed" if point is None else f"{point} armed")
        conn.reply({"seq": seq, "ok": True})

    # -- the Ready loop ------------------------------------------------------------------------

    async def _ready_loop(self) -> None:
        """The only place the core's effects are performed, one Ready at a time, in order.

        The fsync runs in a worker thread: meanwhile the event loop keeps reading, stepping
        and proposing, so everything that arrives during one fsync is batched into the next.
        """
        node = self.node
        loop = asyncio.get_running_loop()
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            while not self._stopping:
                if self._new_reads:  # here too: under load the loop may not idle for long
                    self._start_read_round()
                if not node.has_ready():
                    break
                rd = node.ready()
                armed = self.crash_point is not None  # all that crash points cost, unarmed
                send = self._send_watched if armed else self._send
                was_leader = self.role == "leader"
                if rd.soft_state is not None:
                    self._on_role(rd.soft_state.role, rd.soft_state.leader)
                if rd.snapshot is not None:  # before anything of this Ready leaves
                    await self._install(rd.snapshot)
                hs = rd.hard_state
                new_vote = hs is not None and (hs.term, hs.vote) != self._term_vote
                if hs is not None:
                    self._term_vote = (hs.term, hs.vote)
                    self._check(self.durable.commit_to(hs.commit))
                    if self._observer:  # a leader's decision counts before its messages leave
                        self._observer.committing(self.id, hs.commit,
                                                  was_leader or self.role == "leader")
                self.durable.writing(rd.entries)
                sync = self.config.fsync and self.wal.must_save(hs, rd.entries)
                if sync and self.ack_before_fsync:  # unsafe: as if it were durable already
                    sync = False
                    self.wal.write_unsynced(hs, rd.entries)
                    self._sync_in_background()
                    self._saved(hs, rd.entries, new_vote, armed)
                    send(rd.messages)
                elif not sync:
                    self.wal.save(hs, rd.entries)  # no I/O, or no fsync to wait for
                    self._saved(hs, rd.entries, new_vote, armed)
                    send(rd.messages)
                else:
                    if not new_vote:  # only the entries are being synced: see _MUST_WAIT
                        send(m for m in rd.messages if m.type is not _MUST_WAIT)
                    if armed:
                        self._crash_at("before-save")
                # Committed entries are durable on a quorum already: apply them (and answer
                # clients) while our own disk syncs the new entries, as etcd's server does.
                if rd.committed_entries:
                    self._apply(rd)
                for rs in rd.read_states:
                    reads = self._reads_by_ctx.pop(rs.context, None)
                    if reads:
                        self._reads_at.append((rs.index, reads))
                self._serve_reads()
                if was_leader and self.role != "leader":  # after applying what did commit
                    self._abandon_leadership()
                if sync:
                    if armed and self.crash_point == "torn-write":
                        self.wal.save_torn(hs, rd.entries)
                        self._crash_at("torn-write")
                    # In a worker thread: the loop keeps reading and stepping meanwhile.
                    await loop.run_in_executor(None, self.wal.save, hs, rd.entries)
                    self._fsyncs += 1
                    self._synced_entries += len(rd.entries)
                    self._saved(hs, rd.entries, new_vote, armed)
                    send(m for m in rd.messages if new_vote or m.type is _MUST_WAIT)
                if armed and self._vote_sent:
                    self._vote_sent = False
                    self._crash_at("after-vote")
                node.advance(rd)
                every = self.config.snapshot_every
                if every and self._applied - (node.snapshot.index if node.snapshot else 0) >= every:
                    await self._take_snapshot()

    async def _take_snapshot(self) -> None:
        """Snapshot the state machine at the applied index: file, then WAL, then the core."""
        if self._background_sync is not None and not self._background_sync.done():
            return  # ack-before-fsync: its sync must not meet the log's file being replaced
        index = self._applied
        term = self.node.log_term(index)
        assert term is not None and term >= 0, f"applied entry {index} is not in the log"
        state = self.kv.state()
        data = snapshot.encode(index, term, state)
        await self._persist(index, term, data)
        self.durable.snapshotted(index)
        self.node.compact(index, data)
        self.events.emit("snapshot", index=index, term=term, digest=kv.digest(state),
                         kind="taken")  # fmt: skip
        self.events.flush()

    async def _install(self, snap: Snapshot) -> None:
        """A snapshot from the leader: durable (file, then WAL) before its Ready's messages
        leave, then the state machine is restored from it."""
        body = snapshot.decode(snap.data).body  # checked whole by the core (_snapshot_check)
        if self._background_sync is not None:  # ack-before-fsync: not while it syncs the log
            await asyncio.wait([self._background_sync])
        await self._persist(snap.index, snap.term, snap.data)
        self.durable.snapshotted(snap.index)
        self.kv = kv.KV.restore(body)
        self._applied = snap.index
        log.info("installed the leader's snapshot of entry %d (term %d, %d bytes)", snap.index,
                 snap.term, len(snap.data))
        self.events.emit("snapshot", index=snap.index, term=snap.term, digest=kv.digest(body),
                         kind="installed")  # fmt: skip
        self.events.flush()

    async def _persist(self, index: int, term: int, data: bytes) -> None:
        """The snapshot file, then the compacted WAL (each in a worker thread)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, functools.partial(
            snapshot.write, self._files, self.config.data_dir, data, fsync=self.config.fsync))
        self._crash_at("mid-snapshot")
        await loop.run_in_executor(None, self.wal.compact, index, term)

    def _saved(self, hs: HardState | None, entries: tuple[Entry, ...], new_vote: bool,
               armed: bool) -> None:  # fmt: skip
        """A Ready's save returned: what is durable now, and the crash points right after."""
        self.durable.saved(hs, entries)
        if entries:  # flushed before the acknowledgements that promise them leave
            self.events.emit("stored", first=entries[0].index, last=entries[-1].index,
                             terms=term_runs(entries))
            self.events.flush()
        if new_vote:
            assert hs is not None
            self.events.emit("persisted", term=hs.term, vote=hs.vote, commit=hs.commit)
            if armed:
                self._crash_at("after-term")
        if armed and entries:
            self._crash_at("after-append")

    def _sync_in_background(self) -> None:
        """--unsafe ack-before-fsync: make what was written durable some time later."""
        self._unsynced = True
        if self._background_sync is None or self._background_sync.done():
            self._background_sync = asyncio.create_task(self._sync_later())

    async def _sync_later(self) -> None:
        while self._unsynced:  # until a sync began after the last write
            await asyncio.sleep(_UNSAFE_SYNC_DELAY)
            self._unsynced = False
            await asyncio.get_running_loop().run_in_executor(None, self.wal.sync)

    def _check(self, finding: dict[str, Any] | None) -> None:
        """Record a broken invariant (durability.py) in the log and the events, at once."""
        if finding is not None:
            log.error("invariant %s broken: %s", finding["rule"], finding)
            self.events.emit("invariant", **finding)
            self.events.flush()

    def _send(self, messages: Iterable[Message]) -> None:
        links = self._links
        for msg in messages:
            if msg.type in PROMISES:
                self._check(self.durable.broken_promise(msg))
                if self._observer:
                    self._observer.promised(self.id, msg)
            link = links.get(msg.dst)
            if link is not None:
                link.send(codec.encode_message(msg))

    def _send_watched(self, messages: Iterable[Message]) -> None:
        """`_send` while a crash point is armed: notes a granted vote written to its link."""
        links = self._links
        for msg in messages:
            if msg.type in PROMISES:
                self._check(self.durable.broken_promise(msg))
                if self._observer:
                    self._observer.promised(self.id, msg)
            link = links.get(msg.dst)
            if link is not None and link.send(codec.encode_message(msg)):
                self._vote_sent |= msg.type is MessageType.VOTE_RESP and not msg.reject

    def _crash_at(self, point: str) -> None:
        """If `point` is the armed crash point: say so in the log and the events, and die
        (SIGKILL this process: nothing after it runs)."""
        if self.crash_point != point:
            return
        log.warning("crash point %s reached: killing myself with SIGKILL", point)
        self.events.emit("crash", point=point)
        self.events.flush()
        self._die()

    def _apply(self, rd: Ready) -> None:
        if self._observer:
            self._observer.applying(self.id, rd.committed_entries)
        replies: list[tuple[_ClientConnection, dict[str, Any]]] = []
        record_apply = self.events.apply
        entries = rd.committed_entries
        halfway = self.crash_point == "mid-apply" and len(entries) >= 2
        if halfway:
            entries = entries[: len(entries) // 2]
        for entry in entries:
            result: kv.Result | None = None
            if entry.type == EntryType.NOOP or not entry.data:
                record_apply(entry.index, entry.term, "noop")
            else:
                try:
                    cmd = kv.decode_command(entry.data)
                except kv.CommandError as exc:  # validated before proposing: a bug if seen
                    log.error("entry %d holds a bad command: %s", entry.index, exc)
                    record_apply(entry.index, entry.term, "invalid", crc=crc32(entry.data))
                else:
                    result = self.kv.apply(cmd)
                    record_apply(entry.index, entry.term, cmd.request_id, result.repeat,
                                 crc32(entry.data))
            waiting = self._proposals.pop(entry.index, None)
            if waiting is None:
                continue
            if waiting.term != entry.term:  # our entry was replaced: it was never committed
                replies.append((waiting.conn, _error(waiting.seq, "leader-lost")))
            elif result is None:
                replies.append((waiting.conn, _error(waiting.seq, "bad-request")))
            elif result.ok:
                replies.append((waiting.conn, {"seq": waiting.seq, "ok": True}))
            else:
                replies.append((waiting.conn, _error(waiting.seq, str(result.error))))
        self._applied = entries[-1].index
        self.events.flush()  # the events record every apply before a client hears of it
        if halfway:
            self._crash_at("mid-apply")
        if self.crash_point is not None:
            self._crash_at("after-apply")
        for conn, reply in replies:
            conn.reply(reply)

    def _on_role(self, role: str, leader: str | None) -> None:
        term = self.node.status().term
        if role != self.role:
            log.info("role %s -> %s in term %d (leader %s)", self.role, role, term, leader)
            self.events.emit("role", role=role, term=term)
            self.events.flush()
            self.role = role
            if role == "leader" and self._observer:  # before anything it sends as leader
                self._observer.leading(self.id, term, self.node.log_term)
        else:
            log.info("leader is now %s in term %d", leader, term)

    def _abandon_leadership(self) -> None:
        """Answer what waited on our leadership: appended writes may still commit (info), and
        unconfirmed reads never will be. Confirmed reads are still served once applied."""
        for proposal in self._proposals.values():
            proposal.conn.reply(_error(proposal.seq, "leader-lost"))
        self._proposals.clear()
        for reads in self._reads_by_ctx.values():
            for read in reads:
                read.conn.reply(_error(read.seq, "leader-lost"))
        self._reads_by_ctx.clear()

    # -- linearizable reads ------------------------------------------------------------------

    def _start_read_round(self) -> None:
        reads, self._new_reads = self._new_reads, []
        if self._lease:
            self._catch_up()
        self._read_round += 1
        ctx = self._read_round.to_bytes(8, "big")
        try:
            self.node.read_index(ctx)
        except NotLeader as exc:
            for read in reads:
                read.conn.reply({**_error(read.seq, "not-leader"), "leader": exc.leader_hint})
            return
        term = self.node.status().term  # a round is confirmed in it or never (core's _reset)
        for read in reads:
            read.term = term
        self._reads_by_ctx[ctx] = reads

    def _serve_reads(self) -> None:
        if not self._reads_at:
            return
        applied = self._applied
        waiting = []
        for index, reads in self._reads_at:
            if index > applied:
                waiting.append((index, reads))
                continue
            for read in reads:
                self.events.read(read.asked, read.term, applied)
                value = self.kv.read(read.f, read.key).value
                read.conn.reply({"seq": read.seq, "ok": True, "value": value})
        self._reads_at = waiting


def _snapshot_check(index: int, term: int, data: bytes) -> bool:
    """Whether a leader's snapshot is whole, of (index, term), and a state we can restore."""
    if not snapshot.check(index, term, data):
        return False
    try:
        kv.KV.restore(snapshot.decode(data).body)
    except kv.CommandError:
        return False
    return True


def _error(seq: int, error: str) -> dict[str, Any]:
    return {"seq": seq, "ok": False, "error": error}


# -- connections --------------------------------------------------------------------------------


class _ClientConnection(asyncio.Protocol):
    """A client: requests in, replies out, with flow control. While the client leaves more
    replies unread than the transport's high-water mark, its reading is paused and the frames it
    already sent wait; past MAX_UNSENT it is shed. Its bytes count in the node's budget."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self._reader = codec.FrameReader(codec.MAX_CLIENT_FRAME)
        self._waiting: deque[bytes] = deque()  # frames read while replies could not be sent
        self._waiting_bytes = 0
        self._paused = False  # the transport asked us to stop writing
        self._held = 0  # bytes charged to the node's budget

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._reader.feed(data)
        except codec.CodecError as exc:
            self._refuse("value-too-large", exc)
            return
        self._waiting.extend(frames)
        self._waiting_bytes += sum(map(len, frames))
        self._serve()

    def _serve(self) -> None:
        """Handle the frames received, unless the client is not reading its replies."""
        while self._waiting and not self._paused and self.transport is not None:
            body = self._waiting.popleft()
            self._waiting_bytes -= len(body)
            try:
                request = codec.decode_json(body)
            except codec.CodecError as exc:
                self._refuse("bad-request", exc)
                return
            self.server.on_request(self, request)
        self._account()

    def pause_writing(self) -> None:
        self._paused = True
        if self.transport is not None:
            self.transport.pause_reading()
        self._account()

    def resume_writing(self) -> None:
        self._paused = False
        self._serve()
        if not self._paused and self.transport is not None:
            self.transport.resume_reading()

    def _account(self) -> None:
        """Charge what this connection holds to the node's budget; shed it if over."""
        if self.transport is None:
            return
        unsent = self.transport.get_write_buffer_size() if self._paused else 0
        if unsent > MAX_UNSENT:
            self._shed(f"{unsent} bytes of replies unread")
            return
        held = self._reader.buffered + self._waiting_bytes + unsent
        ok = self.server.buffers.charge(self._held, held)
        self._held = held
        if not ok:
            self._shed(f"the node's {self.server.buffers.cap}-byte buffer budget is spent")

    def _refuse(self, error: str, exc: Exception) -> None:
        """A frame we cannot take: say why (the seq is unknown) and close."""
        log.warning("closing a client connection: %s", exc)
        self.reply({"seq": None, "ok": False, "error": error, "message": str(exc)})
        self.close()

    def _shed(self, why: str) -> None:
        log.warning("shedding a client connection: %s", why)
        if self.transport is not None:
            self.transport.abort()  # its unsent replies are dropped, not flushed
        self.connection_lost(None)

    def connection_lost(self, exc: Exception | None) -> None:
        """Also called by _shed at once: what it held is released there and then."""
        self.transport = None
        self._waiting.clear()
        self._waiting_bytes = 0
        self.server.buffers.charge(self._held, 0)
        self._held = 0

    def reply(self, obj: dict[str, Any]) -> None:
        if self.transport is not None:
            obj["node"] = self.server.id
            self.transport.write(codec.frame(codec.encode_json(obj)))
            if self._paused:
                self._account()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()  # flushes what is buffered (a refusal), then connection_lost
            self.transport = None


class _PeerInbound(asyncio.Protocol):
    """A peer's outbound link, seen from our side: a hello, then Raft messages; never written.

    Until the hello is accepted, frames are limited to codec.MAX_HELLO, the connection counts
    in the node's budget, and it must say hello within _HELLO_TIMEOUT."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self._reader = codec.FrameReader(codec.MAX_FRAME, first_frame=codec.MAX_HELLO)
        self.peer: str | None = None
        self._held = 0
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(_HELLO_TIMEOUT, self._refuse, "no hello in time")

    def data_received(self, data: bytes) -> None:
        server = self.server
        try:
            for body in self._reader.feed(data):
                if self.peer is None:
                    self._hello(body)
                    continue
                msg = codec.decode_message(body)
                if msg.src != self.peer or msg.dst != server.id:
                    raise codec.CodecError(f"message {msg.src}->{msg.dst} on link from {self.peer}")
                server.on_message(msg)
        except (codec.CodecError, auth.AuthError) as exc:
            self._refuse(str(exc))
            return
        if self.peer is None:
            held = self._reader.buffered
            ok = server.buffers.charge(self._held, held)
            self._held = held
            if not ok:
                self._refuse(f"the node's {server.buffers.cap}-byte buffer budget is spent")

    def _refuse(self, why: str) -> None:
        log.warning("closing inbound link from %s: %s", self.peer or "unknown peer", why)
        if self.transport is not None:
            self.transport.abort()

    def _hello(self, body: bytes) -> None:
        hello = codec.decode_hello(body)
        server = self.server
        config = server.config
        if hello.cluster != config.cluster_id:
            expected = config.cluster_id
            raise codec.CodecError(f"hello for cluster {hello.cluster!r}, not {expected!r}")
        if hello.dst != server.id:
            raise codec.CodecError(f"hello for node {hello.dst!r}, not {server.id!r}")
        if hello.src not in config.cluster or hello.src == server.id:
            raise codec.CodecError(f"hello from unknown node {hello.src!r}")
        if config.secret is not None:
            server.replays.verify(config.secret, hello, server.clock())
        self.peer = hello.src
        self._release()
        log.info("inbound link from %s up", hello.src)

    def _release(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.server.buffers.charge(self._held, 0)
        self._held = 0

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._release()
        if self.peer is not None:
            log.info("inbound link from %s down", self.peer)


class _PeerLink(asyncio.Protocol):
    """Our outbound link to one peer: connect, hello, then write messages; reconnect on loss."""

    def __init__(self, server: Server, peer: str, addr: tuple[str, int]) -> None:
        self.server = server
        self.peer = peer
        self.addr = addr
        self.transport: asyncio.Transport | None = None
        self._lost: asyncio.Event = asyncio.Event()
        self._closing = False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = _BACKOFF_MIN
        up = False
        while not self._closing:
            self._lost.clear()
            try:
                async with asyncio.timeout(_CONNECT_TIMEOUT):
                    await loop.create_connection(lambda: self, *self.addr)
            except (OSError, TimeoutError) as exc:
                if up or backoff == _BACKOFF_MIN:  # say it once, not at every retry
                    log.info(
                        "link to %s at %s:%d down: %s", self.peer, *self.addr, exc or "timeout"
                    )
                up = False
            else:
                # A proxy may accept and then close at once (its target is down): only a
                # connection that lasts counts as up, so a flapping link keeps backing off.
                try:
                    await asyncio.wait_for(self._lost.wait(), _STABLE_LINK)
                except TimeoutError:
                    if not up:
                        log.info("link to %s up", self.peer)
                    up, backoff = True, _BACKOFF_MIN
                    await self._lost.wait()
                    log.info("link to %s lost", self.peer)
                    up = False
                    continue
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        cfg = self.server.config
        hello = auth.sign(cfg.secret, cfg.cluster_id, cfg.id, self.peer, self.server.clock())
        self.transport.write(codec.frame(codec.encode_hello(hello)))

    def data_received(self, data: bytes) -> None:
        pass  # the link is one-way: the peer answers on its own link to us

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._lost.set()

    def send(self, body: bytes) -> bool:
        """Write one message; False if it was dropped (link down or its buffer full)."""
        transport = self.transport
        if transport is not None and transport.get_write_buffer_size() < _MAX_LINK_BUFFER:
            transport.write(codec.frame(body))
            return True
        return False

    def close(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.close()

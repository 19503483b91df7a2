"""The link proxy: one asyncio TCP forwarder per directed link i->j, acting on whole messages.

Node i is told that j lives at this proxy's port; the proxy forwards i's frames (4-byte
big-endian length, then the body) to j's real peer port. Rules it keeps:

- A cut link behaves like a network that drops every packet: in-flight data is discarded,
  established connections are cut, and new connections are accepted and then black-holed
  (read and ignored, never refused). Healing closes the black-holed connections so the sender
  reconnects and says hello again.
- A stalled link behaves like a firewall that drops packets of live TCP connections (Jepsen's
  iptables partitions): nothing is lost, nothing moves. The proxy stops reading, so what the
  sender writes waits in socket buffers and then in the sender's own (its flow control pushes
  back), messages a fault holds wait too, and new connections are accepted but not carried on
  until the link flows again. Healing delivers the backlog in order: messages of an old term
  arrive after the partition, the way TCP's retransmissions bring them.
- Faults act on whole messages: drop, delay (fixed + jitter, order kept), duplicate, reorder,
  replay (a stale copy delivered late), hold for a newer term. The first frame of a connection
  (the hello) is never dropped, duplicated or reordered: it identifies the connection rather
  than carrying a Raft message.
- Faults aimed at message kinds (LinkFaults.kinds) leave the other messages alone: they are
  delivered at once, overtaking any that a fault holds back. A message held for a term
  (hold_term) is released right after the first message of a newer term that is delivered,
  or after TERM_HOLD_MAX. Reading kinds and terms needs the bundled Raft's codec
  (raft/codec.py `peek`), imported only when a fault needs it.
- Bytes j writes back on the connection are passed through unchanged (Raft replies travel on
  j's own link; this keeps the proxy transparent for anything else).
- A link without faults takes a fast path: complete frames are written on as they arrive.
- An unframed link (a target whose peers speak their own protocol) forwards bytes as they come:
  it can be cut, and takes no message faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
from dataclasses import asdict, dataclass

from splitbrain.cluster.faults import REORDER_HOLD, REPLAY_AFTER, TERM_HOLD_MAX, LinkFaults
from splitbrain.cluster.ports import HOST

MAX_FRAME = 64 * 1024 * 1024  # a length beyond this is garbage, not a message
CONNECT_TIMEOUT = 2.0


@dataclass(slots=True)
class LinkStats:
    connections: int = 0  # accepted while the link was up
    blackholed: int = 0  # accepted while the link was cut
    blackholed_bytes: int = 0  # read from those and thrown away
    cut_connections: int = 0  # established connections closed by a cut
    received: int = 0  # messages read from the sender
    delivered: int = 0  # messages written to the receiver (duplicates counted)
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    replayed: int = 0  # stale copies scheduled
    held: int = 0  # messages held for a newer term
    untouched: int = 0  # messages of kinds the faults are not aimed at

    def to_json(self) -> dict[str, int]:
        return asdict(self)


def split_frames(buf: bytearray) -> tuple[int, int]:
    """(length, count) of the longest prefix of `buf` made of whole frames; ValueError: garbage."""
    end = count = 0
    size = len(buf)
    while size - end >= 4:
        n = int.from_bytes(buf[end : end + 4], "big")
        if n > MAX_FRAME:
            raise ValueError(f"frame of {n} bytes")
        if size - end - 4 < n:
            break
        end += 4 + n
        count += 1
    return end, count


def frames(chunk: bytes) -> list[bytes]:
    """The frames (header included) of a chunk made of complete frames."""
    out, i = [], 0
    while i < len(chunk):
        n = int.from_bytes(chunk[i : i + 4], "big")
        out.append(chunk[i : i + 4 + n])
        i += 4 + n
    return out


class _Connection:
    """One accepted connection and, unless black-holed, its upstream connection to the receiver."""

    def __init__(self, link: LinkProxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.link = link
        self.down_reader, self.down_writer = reader, writer
        self.up_reader: asyncio.StreamReader | None = None
        self.up_writer: asyncio.StreamWriter | None = None
        self.queue: list[tuple[float, int, bytes]] = []  # (deliver at, seq, frame): a heap
        self.seq = 0
        self.held: dict[int, tuple[int, bytes]] = {}  # seq -> (term, frame): held for a term
        self.released: set[int] = set()  # seqs in the queue superseded by an early release
        self.fifo_at = 0.0  # latest delivery time of an in-order message: delays keep order
        self.queued = asyncio.Event()
        self.hello_sent = False
        self.tasks: list[asyncio.Task[None]] = []

    def abort(self) -> None:
        """Close both sides at once, discarding whatever is buffered (in-flight data is lost)."""
        for w in (self.down_writer, self.up_writer):
            if w is not None:
                w.transport.abort()
        for t in self.tasks:
            if t is not asyncio.current_task():
                t.cancel()
        self.queue.clear()
        self.held.clear()
        self.released.clear()

    async def blackhole(self) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await self.down_reader.read(65536):
                self.link.stats.blackholed_bytes += len(data)
        self.abort()

    async def serve(self, target: tuple[str, int]) -> None:
        self.tasks = [asyncio.current_task()]  # type: ignore[list-item]  # abort() ends it
        try:
            await self.link.flowing.wait()  # a stalled link connects nothing through (lost SYNs)
        except asyncio.CancelledError:
            return
        try:
            self.up_reader, self.up_writer = await asyncio.wait_for(
                asyncio.open_connection(*target), CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError):
            self.abort()  # receiver down: the sender sees its connection close and retries
            return
        if self.link.cut or self not in self.link.conns:
            self.abort()
            return
        self.tasks = [
            asyncio.current_task(),  # type: ignore[list-item]
            asyncio.create_task(self.backward()),
            asyncio.create_task(self.deliver()),
        ]
        try:
            await self.forward()
        except (OSError, ValueError, asyncio.CancelledError):
            pass
        finally:
            self.abort()

    async def forward(self) -> None:
        """Read the sender's frames; pass them on now (fast path) or through the fault queue."""
        assert self.up_writer is not None
        buf = bytearray()
        link = self.link
        while True:
            await link.flowing.wait()
            data = await self.down_reader.read(65536)
            if not data:
                # The sender closed: deliver what is queued before closing (a FIN, not a cut).
                while self.queue:
                    await link.flowing.wait()
                    await asyncio.sleep(max(0.0, self.queue[0][0] - _now()) + 0.001)
                self.up_writer.close()  # flushes what is buffered, unlike abort()
                with contextlib.suppress(OSError):
                    await asyncio.wait_for(self.up_writer.wait_closed(), CONNECT_TIMEOUT)
                return
            if not link.framed:
                link.stats.received += 1
                await link.flowing.wait()  # a read that was pending when the stall began
                link.stats.delivered += 1
                self.up_writer.write(data)
                await self.up_writer.drain()
                continue
            buf += data
            end, count = split_frames(buf)
            if not end:
                continue
            chunk = bytes(buf[:end])
            del buf[:end]
            fast = not link.faults.active() and link.flowing.is_set()
            if fast and not self.queue and self.hello_sent:
                link.stats.received += count
                link.stats.delivered += count
                self.up_writer.write(chunk)
                await self.up_writer.drain()
                continue
            for frame in frames(chunk):
                self.enqueue(frame)

    def enqueue(self, frame: bytes) -> None:
        link, faults, rng = self.link, self.link.faults, self.link.rng
        link.stats.received += 1
        now = _now()
        if not self.hello_sent:
            self.hello_sent = True
            self.push(max(now, self.fifo_at), frame)
            return
        kind, term = _peek(frame) if faults.reads_headers() else (None, None)
        if faults.kinds and kind not in faults.kinds:
            link.stats.untouched += 1
            self.push(now, frame)
            self.release_older(term, now)
            return
        if faults.drop and rng.random() < faults.drop:
            link.stats.dropped += 1
            return
        at = now + faults.delay + (rng.random() * faults.jitter if faults.jitter else 0.0)
        if faults.reorder and rng.random() < faults.reorder:
            link.stats.reordered += 1
            at += REORDER_HOLD
        else:
            at = max(at, self.fifo_at)
            self.fifo_at = at
        if faults.hold_term and term is not None and rng.random() < faults.hold_term:
            link.stats.held += 1
            self.held[self.push(max(at, now + TERM_HOLD_MAX), frame)] = (term, frame)
        else:
            self.push(at, frame)
            self.release_older(term, at)
        if faults.duplicate and rng.random() < faults.duplicate:
            link.stats.duplicated += 1
            self.push(at, frame)
        if faults.replay and rng.random() < faults.replay:
            link.stats.replayed += 1
            self.push(at + rng.uniform(*REPLAY_AFTER), frame)

    def release_older(self, term: int | None, at: float) -> None:
        """A message of `term` goes out at `at`: held messages of older terms follow it."""
        if term is None or not self.held:
            return
        for seq, (held_term, frame) in list(self.held.items()):
            if held_term < term:
                del self.held[seq]
                self.released.add(seq)
                self.push(at, frame)  # same time, later seq: right after the newer message

    def push(self, at: float, frame: bytes) -> int:
        self.seq += 1
        heapq.heappush(self.queue, (at, self.seq, frame))
        self.queued.set()
        return self.seq

    async def deliver(self) -> None:
        try:
            await self._deliver()
        except OSError:
            self.abort()  # the receiver went away: so does the sender's connection

    async def _deliver(self) -> None:
        assert self.up_writer is not None
        while True:
            if not self.queue:
                self.queued.clear()
                await self.queued.wait()
                continue
            wait = self.queue[0][0] - _now()
            if wait > 0:
                self.queued.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.queued.wait(), wait)
                continue
            out = []
            while self.queue and self.queue[0][0] <= _now():
                _, seq, frame = heapq.heappop(self.queue)
                if seq in self.released:
                    self.released.discard(seq)
                    continue
                self.held.pop(seq, None)  # a held message whose newer term never came
                out.append(frame)
            if not out:
                continue
            await self.link.flowing.wait()  # stalled: they go out, in order, when it flows
            self.link.stats.delivered += len(out)
            self.up_writer.write(b"".join(out))
            await self.up_writer.drain()

    async def backward(self) -> None:
        reader = self.up_reader
        assert reader is not None
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while True:
                await self.link.flowing.wait()
                data = await reader.read(65536)
                if not data:
                    break
                self.down_writer.write(data)
                await self.down_writer.drain()
        self.abort()


def _now() -> float:
    return asyncio.get_running_loop().time()


def _peek(frame: bytes) -> tuple[str | None, int | None]:
    """(kind, term) of a frame carrying one of our Raft messages, (None, None) otherwise."""
    from splitbrain.raft.codec import CodecError, peek  # late: cluster/ runs without raft/

    try:
        return peek(memoryview(frame)[4:])
    except CodecError:
        return None, None


class LinkProxy:
    """The proxy of one directed link src -> dst; forwards to `target` (dst's real peer port)."""

    def __init__(self, src: str, dst: str, target: tuple[str, int], rng: random.Random,
                 framed: bool = True) -> None:  # fmt: skip
        self.src, self.dst, self.target, self.rng = src, dst, target, rng
        self.framed = framed  # False: bytes, not messages (counted per chunk read)
        self.cut = False
        self.flowing = asyncio.Event()  # cleared while the link is stalled
        self.flowing.set()
        self.faults = LinkFaults()
        self.stats = LinkStats()
        # dicts, not sets: connections are cut in the order they came (deterministic in sim)
        self.conns: dict[_Connection, None] = {}
        self.blackholed: dict[_Connection, None] = {}
        self.port = 0
        self._server: asyncio.Server | None = None

    async def listen(self, host: str = HOST, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._accept, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(self, reader, writer)
        if self.cut:
            self.stats.blackholed += 1
            self.blackholed[conn] = None
            try:
                await conn.blackhole()
            finally:
                self.blackholed.pop(conn, None)
            return
        self.stats.connections += 1
        self.conns[conn] = None
        try:
            await conn.serve(self.target)
        finally:
            self.conns.pop(conn, None)

    def set_cut(self, cut: bool, stall: bool = False) -> None:
        """Cut the link (`stall`: stall it instead), or heal it (cut False)."""
        if cut and stall:
            self.set_cut(False)  # a stall keeps connections: heal a drop cut first
            self.flowing.clear()
            return
        self.flowing.set()  # a stall ends: the backlog flows (a drop cut then discards it)
        if cut and not self.cut:
            self.stats.cut_connections += len(self.conns)
            for conn in list(self.conns):
                conn.abort()
        elif not cut and self.cut:
            for conn in list(self.blackholed):
                conn.abort()
        self.cut = cut

    def set_faults(self, faults: LinkFaults) -> None:
        self.faults = faults

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        conns = [*self.conns, *self.blackholed]
        for conn in conns:
            conn.abort()
        tasks = [t for conn in conns for t in conn.tasks if t is not asyncio.current_task()]
        await asyncio.gather(*tasks, return_exceptions=True)  # let the cancelled tasks finish
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

"""The link proxy in-process: framing, cut/heal, black-holing, and per-message faults."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from splitbrain.cluster.faults import TERM_HOLD_MAX, LinkFaults
from splitbrain.cluster.proxy import LinkProxy, split_frames
from splitbrain.raft import codec
from splitbrain.raft.messages import Message, MessageType

pytestmark = pytest.mark.timeout(30)


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


class Sink:
    """The receiver j: collects frame bodies from every connection, in arrival order."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.connections = 0
        self.changed = asyncio.Event()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                n = int.from_bytes(await reader.readexactly(4), "big")
                self.bodies.append(await reader.readexactly(n))
                self.changed.set()
        except (asyncio.IncompleteReadError, OSError):
            writer.close()

    async def wait_for(
        self, cond: Callable[[], bool], timeout: float = 5.0, poll: bool = False
    ) -> None:
        """Wait until cond() holds: re-checked on each arrival, or every ms if `poll`."""

        async def loop() -> None:
            while not cond():
                self.changed.clear()
                if poll:
                    await asyncio.sleep(0.001)
                else:
                    await self.changed.wait()

        await asyncio.wait_for(loop(), timeout)


@asynccontextmanager
async def link(seed: int = 1) -> AsyncIterator[tuple[LinkProxy, Sink]]:
    sink = Sink()
    server = await asyncio.start_server(sink.serve, "127.0.0.1", 0)
    proxy = LinkProxy("n1", "n2", server.sockets[0].getsockname()[:2], random.Random(seed))
    await proxy.listen()
    try:
        yield proxy, sink
    finally:
        await proxy.close()
        server.close()


async def connect(proxy: LinkProxy) -> asyncio.StreamWriter:
    _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(frame(b"hello"))
    return writer


async def send_numbered(writer: asyncio.StreamWriter, count: int) -> None:
    """Frames with bodies b"0", b"1", ..., one write each, then drain."""
    for i in range(count):
        writer.write(frame(str(i).encode()))
    await writer.drain()


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coro_fn())  # type: ignore[arg-type]


def test_split_frames_finds_whole_frames_only() -> None:
    buf = bytearray(frame(b"abc") + frame(b"") + frame(b"xyz")[:5])
    assert split_frames(buf) == (7 + 4, 2)
    with pytest.raises(ValueError):
        split_frames(bytearray(b"\xff\xff\xff\xff"))


def test_forwards_frames_in_order_even_when_split_across_writes() -> None:
    async def main() -> None:
        async with link() as (proxy, sink):
            writer = await connect(proxy)
            data = b"".join(frame(str(i).encode()) for i in range(200))
            for i in range(0, len(data), 7):  # frames cut at arbitrary byte boundaries
                writer.write(data[i : i + 7])
            await writer.drain()
            await sink.wait_for(lambda: len(sink.bodies) == 201)
            assert sink.bodies == [b"hello"] + [str(i).encode() for i in range(200)]
            assert proxy.stats.delivered == 201
            writer.close()

    run(main)


def test_cut_closes_connections_and_blackholes_new_ones_until_heal() -> None:
    async def main() -> None:
        async with link() as (proxy, sink):
            writer = await connect(proxy)
            writer.write(frame(b"before"))
            await sink.wait_for(lambda: b"before" in sink.bodies)
            proxy.set_cut(True)
            cut_transport = writer.transport
            # The established connection is cut: the sender's writes start failing.
            with pytest.raises((ConnectionError, OSError)):
                for _ in range(100):
                    writer.write(frame(b"lost"))
                    await writer.drain()
                    await asyncio.sleep(0.01)
            assert cut_transport.is_closing()
            # A new connection is accepted (not refused) but nothing reaches the receiver.
            r2, w2 = await asyncio.open_connection("127.0.0.1", proxy.port)
            void = frame(b"hello") + frame(b"into the void")
            w2.write(void)
            await w2.drain()
            await sink.wait_for(lambda: proxy.stats.blackholed_bytes == len(void), poll=True)
            assert b"into the void" not in sink.bodies and b"lost" not in sink.bodies
            assert proxy.stats.blackholed == 1 and proxy.stats.cut_connections == 1
            proxy.set_cut(False)  # heal closes the black-holed connection: the sender redials
            assert await asyncio.wait_for(r2.read(), 5) == b""
            writer.close()
            w2.close()
            w3 = await connect(proxy)
            w3.write(frame(b"after"))
            await sink.wait_for(lambda: b"after" in sink.bodies)
            w3.close()

    run(main)


def test_a_stalled_link_holds_everything_and_delivers_it_in_order_when_healed() -> None:
    async def main() -> None:
        async with link() as (proxy, sink):
            loop = asyncio.get_running_loop()
            writer = await connect(proxy)
            writer.write(frame(b"before"))
            await sink.wait_for(lambda: b"before" in sink.bodies)
            proxy.set_faults(LinkFaults(delay=0.05))
            writer.write(frame(b"queued"))
            await writer.drain()
            due = loop.time() + 0.05
            await sink.wait_for(lambda: proxy.stats.received == 3, poll=True)
            proxy.set_cut(True, stall=True)
            writer.write(frame(b"held"))
            _, w2 = await asyncio.open_connection("127.0.0.1", proxy.port)
            w2.write(frame(b"hello") + frame(b"new"))
            await asyncio.gather(writer.drain(), w2.drain())
            # Past the queued message's delivery time, nothing has moved and nothing was cut.
            await sink.wait_for(lambda: loop.time() > due + 0.05, poll=True)
            assert sink.bodies == [b"hello", b"before"] and sink.connections == 1
            assert not writer.transport.is_closing() and proxy.stats.cut_connections == 0
            proxy.set_cut(False)
            await sink.wait_for(lambda: len(sink.bodies) == 6)
            first = [b for b in sink.bodies if b not in (b"hello", b"new")]
            assert first == [b"before", b"queued", b"held"]  # in order, nothing lost
            assert sink.bodies.count(b"hello") == 2 and b"new" in sink.bodies
            writer.close()
            w2.close()

    run(main)


def test_drop_discards_about_the_given_share_but_never_the_hello() -> None:
    async def main() -> None:
        async with link() as (proxy, sink):
            proxy.set_faults(LinkFaults(drop=0.5))
            writer = await connect(proxy)
            await send_numbered(writer, 400)
            await sink.wait_for(lambda: proxy.stats.dropped + len(sink.bodies) == 401)
            assert sink.bodies[0] == b"hello"
            assert 120 < proxy.stats.dropped < 280
            got = [int(b) for b in sink.bodies[1:]]
            assert got == sorted(got)  # dropping never reorders
            writer.close()

    run(main)


def test_delay_holds_every_message_and_keeps_order() -> None:
    async def main() -> None:
        async with link() as (proxy, sink):
            proxy.set_faults(LinkFaults(delay=0.2, jitter=0.1))
            writer = await connect(proxy)
            await sink.wait_for(lambda: len(sink.bodies) == 1)  # the hello
            loop = asyncio.get_running_loop()
            sent = loop.time()
            await send_numbered(writer, 50)
            await sink.wait_for(lambda: len(sink.bodies) >= 2)
            assert loop.time() - sent >= 0.2
            await sink.wait_for(lambda: len(sink.bodies) == 51)
            assert [int(b) for b in sink.bodies[1:]] == list(range(50))
            writer.close()

    run(main)


def test_duplicate_and_reorder_act_on_whole_messages() -> None:
    async def main() -> None:
        async with link() as (proxy, sink):
            proxy.set_faults(LinkFaults(duplicate=0.3, reorder=0.3))
            writer = await connect(proxy)
            await send_numbered(writer, 300)
            await sink.wait_for(lambda: len(sink.bodies) == 301 + proxy.stats.duplicated)
            got = [int(b) for b in sink.bodies[1:]]
            assert sorted(set(got)) == list(range(300))  # nothing lost, nothing mangled
            assert len(got) - 300 == proxy.stats.duplicated > 30
            assert got != sorted(got) and proxy.stats.reordered > 30
            writer.close()

    run(main)


def test_sender_close_delivers_what_is_queued() -> None:
    async def main() -> None:
        async with link() as (proxy, sink):
            proxy.set_faults(LinkFaults(delay=0.05))
            writer = await connect(proxy)
            writer.write(frame(b"last words"))
            await writer.drain()
            writer.close()
            await sink.wait_for(lambda: b"last words" in sink.bodies)

    run(main)


def test_receiver_down_closes_the_senders_connection() -> None:
    async def main() -> None:
        proxy = LinkProxy("n1", "n2", ("127.0.0.1", 1), random.Random(0))  # nothing on port 1
        await proxy.listen()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
        finally:
            await proxy.close()

    run(main)


def test_link_faults_reject_bad_values_with_the_field_name() -> None:
    with pytest.raises(ValueError, match="'drop' must be in"):
        LinkFaults(drop=1.5)
    with pytest.raises(ValueError, match="'delay' must be >= 0"):
        LinkFaults(delay=-1)
    with pytest.raises(ValueError, match="unknown link fault 'latency'"):
        LinkFaults.from_json({"latency": 1})
    assert LinkFaults.from_json({"drop": 0.2}).to_json() == {"drop": 0.2}
    assert not LinkFaults().active()


# Faults aimed at Raft message kinds and terms (the bundled Raft's frames, read by codec.peek).


def raft(kind: MessageType, term: int, index: int = 0) -> bytes:
    """The body of a Raft message of `kind`, told apart by its index."""
    return codec.encode_message(Message(kind, "n1", "n2", term=term, index=index))


def seen(sink: Sink) -> list[tuple[str, int, int]]:
    """(kind, term, index) of every Raft message the receiver got, in order (others skipped)."""
    out = []
    for body in sink.bodies[1:]:
        with contextlib.suppress(codec.CodecError):
            m = codec.decode_message(body)
            out.append((m.type.name, m.term, m.index))
    return out


def test_faults_aimed_at_one_kind_leave_the_others_alone_and_ahead() -> None:
    async def main() -> None:
        async with link() as (proxy, sink):
            proxy.set_faults(LinkFaults(drop=1.0, kinds=("app-resp",)))
            writer = await connect(proxy)
            for i in range(20):
                kind = MessageType.APP_RESP if i % 2 else MessageType.HEARTBEAT_RESP
                writer.write(frame(raft(kind, 1, i)))
            writer.write(frame(b"not ours"))  # another target's message: no kind, untouched
            await writer.drain()
            await sink.wait_for(lambda: len(sink.bodies) == 12)
            assert [s[2] for s in seen(sink)] == list(range(0, 20, 2))
            assert {s[0] for s in seen(sink)} == {"HEARTBEAT_RESP"}
            assert sink.bodies[-1] == b"not ours"
            assert proxy.stats.dropped == 10 and proxy.stats.untouched == 11

            # Delaying only the acks: a heartbeat sent after an ack overtakes it.
            proxy.set_faults(LinkFaults(delay=0.3, kinds=("app-resp",)))
            writer.write(frame(raft(MessageType.APP_RESP, 1, 100)))
            writer.write(frame(raft(MessageType.HEARTBEAT, 1, 101)))
            await writer.drain()
            await sink.wait_for(lambda: len(sink.bodies) == 14)
            assert [s[2] for s in seen(sink)][-2:] == [101, 100]
            writer.close()

    run(main)


def test_replay_delivers_a_stale_copy_after_newer_messages() -> None:
    async def main() -> None:
        async with link() as (proxy, sink):
            proxy.set_faults(LinkFaults(replay=1.0, kinds=("app",)))
            writer = await connect(proxy)
            loop = asyncio.get_running_loop()
            writer.write(frame(raft(MessageType.APP, 3, 1)))
            await writer.drain()
            sent = loop.time()
            await sink.wait_for(lambda: len(sink.bodies) == 2)
            writer.write(frame(raft(MessageType.HEARTBEAT, 3, 2)))  # untouched: once, at once
            await writer.drain()
            await sink.wait_for(lambda: len(sink.bodies) == 4)
            assert loop.time() - sent >= 0.1  # the copy came late (REPLAY_AFTER)
            assert seen(sink) == [("APP", 3, 1), ("HEARTBEAT", 3, 2), ("APP", 3, 1)]
            assert proxy.stats.replayed == 1
            writer.close()

    run(main)


def test_held_messages_arrive_after_the_first_message_of_a_newer_term() -> None:
    async def main() -> None:
        async with link() as (proxy, sink):
            proxy.set_faults(LinkFaults(hold_term=1.0, kinds=("app", "app-resp")))
            writer = await connect(proxy)
            await sink.wait_for(lambda: len(sink.bodies) == 1)  # the hello
            writer.write(frame(raft(MessageType.APP, 4, 1)))
            writer.write(frame(raft(MessageType.APP_RESP, 4, 2)))
            writer.write(frame(raft(MessageType.HEARTBEAT, 4, 3)))  # same term: releases none
            await writer.drain()
            await sink.wait_for(lambda: len(sink.bodies) == 2)
            writer.write(frame(raft(MessageType.VOTE, 5, 4)))  # a newer term passes
            await writer.drain()
            await sink.wait_for(lambda: len(sink.bodies) == 5)
            assert seen(sink) == [("HEARTBEAT", 4, 3), ("VOTE", 5, 4), ("APP", 4, 1),
                                  ("APP_RESP", 4, 2)]
            assert proxy.stats.held == 2

            # Without a newer term, a held message still arrives after TERM_HOLD_MAX.
            loop = asyncio.get_running_loop()
            sent = loop.time()
            writer.write(frame(raft(MessageType.APP, 5, 5)))
            await writer.drain()
            await sink.wait_for(lambda: len(sink.bodies) == 6)
            assert loop.time() - sent >= TERM_HOLD_MAX
            assert seen(sink)[-1] == ("APP", 5, 5)
            writer.close()

    run(main)


def test_kind_filters_name_known_kinds_and_round_trip() -> None:
    with pytest.raises(ValueError, match="unknown message kind 'appendentries'"):
        LinkFaults(drop=0.5, kinds=("appendentries",))
    faults = LinkFaults(delay=0.1, kinds=("app-resp", "heartbeat"))
    assert faults.to_json() == {"delay": 0.1, "kinds": ["app-resp", "heartbeat"]}
    assert LinkFaults.from_json(faults.to_json()) == faults
    assert not LinkFaults(kinds=("app",)).active()
    assert LinkFaults(hold_term=0.2).reads_headers() and not LinkFaults(drop=1).reads_headers()

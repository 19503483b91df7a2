"""The simulated network: ordered streams, refusals, resets on kill, FIN and RST, flow control."""

from __future__ import annotations

import asyncio
import random

import pytest

from splitbrain.sim.loop import SimLoop
from splitbrain.sim.net import WINDOW, SimNet

HOST = "127.0.0.1"


def world(seed: int = 1, latency: tuple[float, float] = (0.0001, 0.005)) -> SimLoop:
    loop = SimLoop()
    rng = random.Random(seed)
    SimNet(loop, lambda: rng.uniform(*latency))
    return loop


def run(loop: SimLoop, coro):
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.end()
        loop.net.close()


class Recorder(asyncio.Protocol):
    """Records what a connection sees; can stop reading."""

    def __init__(self, log: list | None = None) -> None:
        self.log = log if log is not None else []
        self.data = bytearray()
        self.transport = None
        self.lost = asyncio.get_running_loop().create_future()
        self.paused_writing = 0
        self.resumed_writing = 0

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.data += data
        self.log.append(bytes(data))

    def eof_received(self):
        self.log.append("eof")

    def connection_lost(self, exc):
        self.log.append(("lost", type(exc).__name__ if exc else None))
        if not self.lost.done():
            self.lost.set_result(exc)

    def pause_writing(self):
        self.paused_writing += 1

    def resume_writing(self):
        self.resumed_writing += 1


async def listen(loop: SimLoop, proc, port: int, accepted: list):
    def factory():
        p = Recorder()
        accepted.append(p)
        return p

    if proc is None:
        return await loop.create_server(factory, HOST, port)
    return await proc.spawn(loop.create_server(factory, HOST, port))


def test_a_stream_keeps_its_order_while_connections_interleave():
    loop = world()

    async def main():
        accepted: list = []
        await listen(loop, loop.process("server"), 7000, accepted)
        clients = [await loop.create_connection(Recorder, HOST, 7000) for _ in range(2)]
        for i in range(200):
            for c, (transport, _) in enumerate(clients):
                transport.write(f"{c}:{i};".encode())
        await asyncio.sleep(1)
        return accepted

    accepted = run(loop, main())
    for c, server_side in enumerate(accepted):
        assert server_side.data.decode() == "".join(f"{c}:{i};" for i in range(200))
    assert all(len(s.log) > 20 for s in accepted)  # delivered in many chunks, interleaved


def test_connecting_where_nobody_listens_is_refused():
    loop = world()
    server = loop.process("server")

    async def main():
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(Recorder, HOST, 7000)
        await listen(loop, server, 7000, [])
        await loop.create_connection(Recorder, HOST, 7000)
        server.kill()  # its listeners vanish with it
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(Recorder, HOST, 7000)

    run(loop, main())


def test_killing_a_process_resets_its_connections_and_drops_what_was_in_flight():
    loop = world()
    server = loop.process("server")

    async def main():
        accepted: list = []
        await listen(loop, server, 7000, accepted)
        transport, client = await loop.create_connection(Recorder, HOST, 7000)
        transport.write(b"hello")
        await asyncio.sleep(0.1)
        accepted[0].transport.write(b"bye")  # from the server: in flight when it dies
        server.kill()
        exc = await asyncio.wait_for(client.lost, 1)
        return accepted[0], client, exc

    server_side, client, exc = run(loop, main())
    assert server_side.log == [b"hello"]  # a dead process's protocol hears nothing more
    assert isinstance(exc, ConnectionResetError)
    assert client.log[-1] == ("lost", "ConnectionResetError")


def test_close_sends_fin_after_the_buffered_bytes_and_abort_sends_rst():
    loop = world()

    async def main():
        accepted: list = []
        await listen(loop, loop.process("server"), 7000, accepted)
        t1, c1 = await loop.create_connection(Recorder, HOST, 7000)
        t1.write(b"a" * 10)
        t1.write(b"b" * 10)
        t1.close()
        assert t1.is_closing()
        t2, c2 = await loop.create_connection(Recorder, HOST, 7000)
        t2.write(b"x")
        await asyncio.sleep(0.05)
        t2.abort()
        await asyncio.sleep(0.1)
        return accepted, c1, c2

    (s1, s2), c1, c2 = run(loop, main())
    assert c2.log == [("lost", None)]
    assert bytes(s1.data) == b"a" * 10 + b"b" * 10
    assert s1.log[-2:] == ["eof", ("lost", None)]  # a Protocol's eof closes its side too
    assert c1.log == [("lost", None)]
    assert s2.log == [b"x", ("lost", "ConnectionResetError")]


def test_write_eof_half_closes_and_close_sends_no_second_fin():
    loop = world()

    async def main():
        accepted: list = []
        await listen(loop, loop.process("server"), 7000, accepted)
        transport, client = await loop.create_connection(Recorder, HOST, 7000)
        transport.write(b"last words")
        transport.write_eof()
        transport.close()
        await asyncio.sleep(0.1)
        return accepted[0], client

    server, client = run(loop, main())
    assert server.log == [b"last words", "eof", ("lost", None)]
    assert client.log == [("lost", None)]


def test_a_slow_reader_fills_the_senders_buffer_then_drains_it():
    loop = world()

    async def main():
        accepted: list = []
        await listen(loop, loop.process("server"), 7000, accepted)
        transport, client = await loop.create_connection(Recorder, HOST, 7000)
        await asyncio.sleep(0.05)
        accepted[0].transport.pause_reading()
        chunk = b"z" * 65536
        for _ in range(2 * WINDOW // len(chunk)):
            transport.write(chunk)
        await asyncio.sleep(0.5)
        held = transport.get_write_buffer_size()
        assert held >= WINDOW - len(chunk)  # the window is full: the rest waits with us
        assert client.paused_writing == 1 and len(accepted[0].data) == 0
        accepted[0].transport.resume_reading()
        await asyncio.sleep(0.5)
        assert transport.get_write_buffer_size() == 0 and client.resumed_writing == 1
        return len(accepted[0].data)

    assert run(loop, main()) == 2 * WINDOW


def test_a_paused_process_receives_when_it_resumes():
    loop = world()
    server = loop.process("server")

    async def main():
        accepted: list = []
        await listen(loop, server, 7000, accepted)
        transport, _ = await loop.create_connection(Recorder, HOST, 7000)
        await asyncio.sleep(0.05)
        server.pause()
        transport.write(b"while paused")
        await asyncio.sleep(1)
        assert accepted[0].data == b""
        server.resume()
        await asyncio.sleep(0)
        return accepted[0].data

    assert run(loop, main()) == b"while paused"


def test_asyncio_streams_run_on_it():
    loop = world()

    async def echo(reader, writer):
        while line := await reader.readline():
            writer.write(line.upper())
            await writer.drain()
        writer.close()

    async def main():
        await loop.process("server").spawn(asyncio.start_server(echo, HOST, 0))
        reader, writer = await asyncio.open_connection(HOST, 40_000)  # the first port handed out
        writer.write(b"ping\npong\n")
        await writer.drain()
        lines = [await reader.readline(), await reader.readline()]
        writer.close()
        await writer.wait_closed()
        return lines

    assert run(loop, main()) == [b"PING\n", b"PONG\n"]

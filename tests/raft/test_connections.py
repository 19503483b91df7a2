"""What a node's connections may hold (issue 10 item 4): a client that does not read its
replies is paused, then shed; partial frames are bounded per connection and per node."""

import asyncio
import logging

import pytest

from splitbrain.raft import codec
from splitbrain.raft.buffers import MAX_UNSENT, BufferBudget
from splitbrain.raft.server import _ClientConnection, _PeerInbound
from tests.raft.conn_fakes import FakeTransport, built_server


def status(seq: int) -> bytes:
    return codec.frame(codec.encode_json({"seq": seq, "f": "status"}))


def client(server):
    conn = _ClientConnection(server)
    transport = FakeTransport()
    conn.connection_made(transport)
    return conn, transport


def test_a_client_that_does_not_read_is_paused_then_resumed(tmp_path):
    with built_server(tmp_path) as server:
        conn, t = client(server)
        conn.data_received(status(1) + status(2))
        assert [r["seq"] for r in t.replies()] == [1, 2]
        conn.pause_writing()  # the transport's buffer passed its high-water mark
        assert not t.reading
        conn.data_received(status(3) + status(4) + status(5)[:7])
        assert [r["seq"] for r in t.replies()] == [1, 2]  # requests wait: no more replies
        assert server.buffers.used == 2 * (len(status(3)) - 4) + 7 + t.unsent  # bodies waiting
        t.unsent = 0  # the client read everything
        conn.resume_writing()
        assert [r["seq"] for r in t.replies()] == [1, 2, 3, 4]
        assert t.reading and server.buffers.used == 7  # the part of frame 5
        conn.connection_lost(None)
        assert server.buffers.used == 0


def test_a_client_that_never_reads_is_shed(tmp_path, caplog):
    with built_server(tmp_path) as server:
        conn, t = client(server)
        conn.pause_writing()
        t.unsent = MAX_UNSENT  # as if replies kept coming for requests read earlier
        conn.reply({"seq": 9, "ok": True})
        assert t.aborted and server.buffers.used == 0
        unsent = MAX_UNSENT + len(t.written[-1])
        assert f"shedding a client connection: {unsent} bytes of replies unread" in caplog.text


def test_the_node_budget_sheds_the_connection_that_overflows_it(tmp_path, caplog):
    with built_server(tmp_path) as server:
        server.buffers = BufferBudget(cap=1000)
        first, t1 = client(server)
        first.data_received((5000).to_bytes(4, "big") + b"x" * 900)  # a partial frame
        second, t2 = client(server)
        second.data_received((5000).to_bytes(4, "big") + b"x" * 200)
        assert not t1.aborted and t2.aborted
        assert server.buffers.used == 904
        assert "the node's 1000-byte buffer budget is spent" in caplog.text


def test_a_frame_over_the_client_limit_is_refused_before_it_is_buffered(tmp_path, caplog):
    with built_server(tmp_path) as server:
        conn, t = client(server)
        conn.data_received((60 * 1024 * 1024).to_bytes(4, "big") + b"x" * 1000)
        assert t.closed and server.buffers.used == 0
        assert t.replies() == [{
            "seq": None, "ok": False, "error": "value-too-large", "node": "n1",
            "message": "frame of 62914560 bytes exceeds the 4194304-byte limit"}]


def test_a_peer_says_hello_in_a_small_frame_and_in_time(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr("splitbrain.raft.server._HELLO_TIMEOUT", 0.05)
    caplog.set_level(logging.INFO)

    async def scenario():
        with built_server(tmp_path) as server:
            big, slow, ok = (_PeerInbound(server) for _ in range(3))
            transports = [FakeTransport() for _ in range(3)]
            for conn, t in zip((big, slow, ok), transports, strict=True):
                conn.connection_made(t)
            big.data_received((codec.MAX_HELLO + 1).to_bytes(4, "big"))
            slow.data_received(b"\0\0\0\x10{")  # a partial hello: charged while it waits
            assert server.buffers.used == 5
            ok.data_received(codec.frame(codec.encode_hello(codec.Hello("splitbrain", "n2", "n1"))))
            await asyncio.sleep(0.2)
            for conn in (big, slow, ok):
                conn.connection_lost(None)
            return [t.aborted for t in transports], server.buffers.used

    aborted, used = asyncio.run(scenario())
    assert aborted == [True, True, False] and used == 0
    assert "frame of 4097 bytes exceeds the 4096-byte limit" in caplog.text
    assert "closing inbound link from unknown peer: no hello in time" in caplog.text
    assert "inbound link from n2 up" in caplog.text


@pytest.mark.parametrize("cap", [0, 10])
def test_the_budget_refuses_growth_past_its_cap_but_never_shrinking(cap):
    budget = BufferBudget(cap)
    assert budget.charge(0, cap) and not budget.charge(cap, cap + 1)
    assert budget.charge(cap + 1, 0) and budget.used == 0

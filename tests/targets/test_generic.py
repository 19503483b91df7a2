"""The generic client protocol (HTTP+JSON and newline-delimited JSON over TCP): every reply and
every network failure maps to ok / fail / info as DESIGN.md says."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from splitbrain.targets.generic import HttpJsonClient, NdjsonClient
from tests.targets.fakehttp import FakeHttp

pytestmark = pytest.mark.timeout(30)


def closed_port() -> tuple[str, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    address = s.getsockname()[:2]
    s.close()  # nothing listens there now: connecting is refused
    return address


def run_http(behave, f, key, value, *, timeout=0.5, second=None):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        home = FakeHttp(behave)
        nodes = {"n1": await home.start()}
        other = None
        if second is not None:
            other = FakeHttp(second)
            nodes["n2"] = await other.start()
        client = HttpJsonClient(nodes, "n1", "c7", timeout, "/op")
        try:
            out = await client.invoke(f, key, value)
            return out, home.requests, other.requests if other else []
        finally:
            await client.close()
            await home.stop()
            if other:
                await other.stop()

    return asyncio.run(main())


def test_requests_carry_the_operation_and_a_unique_id():
    out, reqs, _ = run_http(lambda r: (200, {"type": "ok", "value": 3}), "read", "k1", None)
    assert out.type == "ok" and out.value == 3 and out.node == "n1" and out.request == "c7:1"
    assert reqs == [{"method": "POST", "path": "/op",
                     "body": {"id": "c7:1", "f": "read", "key": "k1", "value": None}}]


@pytest.mark.parametrize(("f", "reply", "expect"), [
    ("write", {"type": "ok"}, ("ok", 4, None)),
    ("cas", {"type": "fail", "error": "cas-mismatch"}, ("fail", None, "cas-mismatch")),
    ("write", {"type": "info", "error": "lost"}, ("info", None, "lost")),
    ("read", {"type": "info", "error": "lost"}, ("fail", None, "lost")),  # a read changes nothing
    ("get", {"type": "ok", "value": None}, ("ok", "", None)),  # a kv key never written
    ("write", {"type": "maybe"}, ("info", None, 'bad reply: {"type": "maybe"}')),
])
def test_replies_map_to_outcomes(f, reply, expect):
    value = [1, 2] if f == "cas" else 4
    out, _, _ = run_http(lambda r: (200, reply), f, "k1", value)
    assert (out.type, out.value, out.error) == expect


@pytest.mark.parametrize(("f", "expect"), [("write", "info"), ("read", "fail")])
def test_no_answer_after_sending_is_info_for_a_write_and_fail_for_a_read(f, expect):
    out, reqs, _ = run_http(lambda r: "hang", f, "k1", 1, timeout=0.3)
    assert (out.type, out.error) == (expect, "timeout") and len(reqs) == 1
    out, _, _ = run_http(lambda r: "close", f, "k1", 1)
    assert (out.type, out.error) == (expect, "connection-lost")
    out, _, _ = run_http(lambda r: (503, "overloaded"), f, "k1", 1)
    assert (out.type, out.error) == (expect, "http 503")


def test_not_leader_is_definite_and_the_hinted_node_is_asked():
    out, first, second = run_http(
        lambda r: (200, {"type": "fail", "error": "not-leader", "leader": "n2"}), "write", "k", 1,
        second=lambda r: (200, {"type": "ok"}))
    assert out.type == "ok" and out.node == "n2"
    assert len(first) == 1 and second[0]["body"]["id"] == first[0]["body"]["id"]


def test_a_node_that_cannot_be_reached_hands_the_operation_to_the_next():
    async def main():  # type: ignore[no-untyped-def]
        up = FakeHttp(lambda r: (200, {"type": "ok"}))
        nodes = {"n1": closed_port(), "n2": await up.start()}
        client = HttpJsonClient(nodes, "n1", "c1", 0.5)
        try:
            assert (await client.invoke("write", "k", 1)).node == "n2"
            lonely = HttpJsonClient({"n1": closed_port()}, "n1", "c2", 0.2)
            out = await lonely.invoke("write", "k", 1)
            assert (out.type, out.error) == ("fail", "unavailable")  # nothing was ever sent
        finally:
            await client.close()
            await up.stop()

    asyncio.run(main())


async def ndjson_server(answer):  # type: ignore[no-untyped-def]
    async def serve(reader, writer):  # type: ignore[no-untyped-def]
        while line := await reader.readline():
            writer.write(answer(json.loads(line)).encode() + b"\n")
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[:2]


def test_ndjson_over_tcp_one_line_each_way():
    async def main():  # type: ignore[no-untyped-def]
        server, address = await ndjson_server(
            lambda req: json.dumps({"id": req["id"], "type": "ok", "value": req["key"] + "!"}))
        client = NdjsonClient({"n1": address}, "n1", "c1", 0.5)
        try:
            outs = [await client.invoke("get", "k1", None), await client.invoke("get", "k2", None)]
            assert [(o.type, o.value, o.request) for o in outs] == [
                ("ok", "k1!", "c1:1"), ("ok", "k2!", "c1:2")]
        finally:
            await client.close()
            server.close()

    asyncio.run(main())


def test_ndjson_reply_to_another_request_is_no_reply():
    async def main():  # type: ignore[no-untyped-def]
        server, address = await ndjson_server(lambda req: json.dumps({"id": "x:9", "type": "ok"}))
        client = NdjsonClient({"n1": address}, "n1", "c1", 0.5)
        try:
            out = await client.invoke("put", "k1", "v")
            assert out.type == "info" and "not 'c1:1'" in str(out.error)
        finally:
            await client.close()
            server.close()

    asyncio.run(main())

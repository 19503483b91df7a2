"""The client's mapping of replies and network trouble to ok/fail/info, against fake nodes."""

import asyncio

import pytest

from splitbrain.raft import codec
from splitbrain.raft.client import Client, Outcome, node_status
from splitbrain.raft.local import free_ports


class FakeNode:
    """A node that answers each request with `behave(req)`: a reply dict, "hang" or "close"."""

    def __init__(self, name, behave):
        self.name = name
        self.behave = behave
        self.requests = []
        self.writers = []

    async def start(self):
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.addr = self.server.sockets[0].getsockname()[:2]

    async def serve(self, reader, writer):
        self.writers.append(writer)
        try:
            while True:
                size = int.from_bytes(await reader.readexactly(4), "big")
                req = codec.decode_json(await reader.readexactly(size))
                self.requests.append(req)
                action = self.behave(req)
                if action == "close":
                    writer.close()
                    return
                if action != "hang":
                    writer.write(codec.frame(codec.encode_json({"seq": req["seq"], **action})))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self):
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()


def scenario(behaviours, f, value=None, *, timeout=3.0, home="n1"):
    """Run one invoke against fake nodes; returns (outcome, {node: requests})."""

    async def main():
        nodes = {name: FakeNode(name, b) for name, b in behaviours.items()}
        for node in nodes.values():
            await node.start()
        client = Client({n: node.addr for n, node in nodes.items()}, home, "c7", timeout)
        try:
            out = await client.invoke(f, "k", value)
        finally:
            await client.close()
            for node in nodes.values():
                await node.close()
        return out, {n: node.requests for n, node in nodes.items()}

    return asyncio.run(asyncio.wait_for(main(), 10))


def test_ok_write_returns_the_input_value_and_names_the_request():
    out, reqs = scenario({"n1": lambda r: {"ok": True}}, "write", 5)
    assert out == Outcome("ok", value=5, node="n1", request="c7:1")
    assert reqs["n1"] == [{"cid": "c7", "seq": 1, "f": "write", "key": "k", "value": 5}]


def test_ok_read_returns_the_value_read():
    out, _ = scenario({"n1": lambda r: {"ok": True, "value": "abc"}}, "get")
    assert (out.type, out.value) == ("ok", "abc")


def test_not_leader_hints_are_followed_with_the_same_request():
    out, reqs = scenario(
        {
            "n1": lambda r: {"ok": False, "error": "not-leader", "leader": "n3"},
            "n2": lambda r: {"ok": False, "error": "not-leader", "leader": None},
            "n3": lambda r: {"ok": True},
        },
        "put",
        "v",
    )
    assert (out.type, out.node) == ("ok", "n3")
    assert reqs["n3"] == reqs["n1"] and not reqs["n2"]


def test_no_leader_within_the_timeout_is_a_definite_failure():
    refuse = lambda r: {"ok": False, "error": "not-leader", "leader": None}  # noqa: E731
    out, reqs = scenario({"n1": refuse, "n2": refuse}, "cas", [1, 2], timeout=0.5)
    assert (out.type, out.error) == ("fail", "not-leader")
    assert reqs["n1"] and reqs["n2"]  # it kept asking around


def test_unreachable_nodes_are_a_definite_failure(tmp_path):
    async def main():
        ports = free_ports(2)
        client = Client(
            {"n1": ("127.0.0.1", ports[0]), "n2": ("127.0.0.1", ports[1])}, "n1", "c", 0.2
        )
        out = await client.invoke("write", "k", 1)
        await client.close()
        return out

    out = asyncio.run(main())
    assert (out.type, out.error) == ("fail", "no-leader")


@pytest.mark.parametrize(
    "f, value, behave, expected",
    [
        ("write", 1, lambda r: "hang", ("info", "timeout")),
        ("append", "x", lambda r: "close", ("info", "connection-lost")),
        ("cas", [1, 2], lambda r: {"ok": False, "error": "leader-lost"}, ("info", "leader-lost")),
        ("cas", [1, 2], lambda r: {"ok": False, "error": "cas-mismatch"}, ("fail", "cas-mismatch")),
        ("put", "x", lambda r: {"ok": False, "error": "bad-request"}, ("fail", "bad-request")),
        # A read changes nothing: whatever went wrong, it did not happen.
        ("read", None, lambda r: "hang", ("fail", "timeout")),
        ("get", None, lambda r: "close", ("fail", "connection-lost")),
        ("read", None, lambda r: {"ok": False, "error": "leader-lost"}, ("fail", "leader-lost")),
    ],
)
def test_error_mapping(f, value, behave, expected):
    out, _ = scenario({"n1": behave}, f, value, timeout=0.3)
    assert (out.type, out.error) == expected
    assert out.request == "c7:1" and out.node == "n1"


def test_node_status_of_a_live_and_an_unreachable_node():
    status = {
        "id": "n1",
        "role": "leader",
        "term": 3,
        "leader": "n1",
        "commit": 9,
        "applied": 9,
        "last_index": 9,
    }

    async def main():
        node = FakeNode("n1", lambda r: {"ok": True, "status": status})
        await node.start()
        live = await node_status(node.addr, 1.0)
        await node.close()
        dead = await node_status(("127.0.0.1", free_ports(1)[0]), 0.5)
        return live, dead

    live, dead = asyncio.run(main())
    assert live == status and dead is None

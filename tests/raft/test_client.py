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


def scenario(behaviours, f, value=None, *, timeout=3.0, home="n1", retries=0):
    """Run one invoke against fake nodes; returns (outcome, {node: requests})."""

    async def main():
        nodes = {name: FakeNode(name, b) for name, b in behaviours.items()}
        for node in nodes.values():
            await node.start()
        addrs = {n: node.addr for n, node in nodes.items()}
        client = Client(addrs, home, "c7", timeout, retries=retries)
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


# Retries of an attempt that may have taken effect: the same (client id, seq), another node.

REFUSE = {"ok": False, "error": "not-leader", "leader": None}


@pytest.mark.parametrize(
    "f, value, first, then, expected",
    [
        ("write", 1, "hang", {"ok": True}, ("ok", None)),
        ("append", "x", "close", {"ok": False, "error": "cas-mismatch"}, ("fail", "cas-mismatch")),
        # Nobody answers what became of the first attempt: it may have happened.
        ("cas", [1, 2], {"ok": False, "error": "leader-lost"}, REFUSE, ("info", "leader-lost")),
        ("write", 1, "hang", "hang", ("info", "timeout")),
        ("read", None, "hang", {"ok": True, "value": 4}, ("ok", None)),
        ("read", None, "close", "hang", ("fail", "timeout")),
    ],
)
def test_indeterminate_attempts_are_retried_under_the_same_request(f, value, first, then,
                                                                   expected):
    """n1 behaves as `first`, n2 and n3 as `then`; two retries."""
    out, reqs = scenario({"n1": lambda r: first, "n2": lambda r: then, "n3": lambda r: then},
                         f, value, timeout=0.3, retries=2)
    assert (out.type, out.error) == expected
    assert out.request == "c7:1"
    sent = [r for node in ("n1", "n2", "n3") for r in reqs[node]]
    assert reqs["n1"] and (reqs["n2"] or reqs["n3"])  # retried on another node
    assert {(r["cid"], r["seq"]) for r in sent} == {("c7", 1)}
    if out.type == "ok" and f == "read":
        assert out.value == 4
    if expected == ("info", "timeout"):
        assert len(sent) == 3  # one attempt and two retries, then it gives up


def test_a_refusal_ends_an_operation_that_was_never_sent_anywhere():
    out, reqs = scenario({"n1": lambda r: REFUSE, "n2": lambda r: REFUSE}, "write", 1,
                         timeout=0.6, retries=2)
    assert (out.type, out.error) == ("fail", "not-leader")  # no retry: nothing may have happened
    assert reqs["n1"] and reqs["n2"]


def test_one_call_spans_every_attempt_of_a_retried_operation(tmp_path):
    """Through the interpreter: one invoke and one completion, from before the first attempt
    to after the retry that answered."""
    from splitbrain.history import HistoryWriter, pair_calls, read_jsonl
    from splitbrain.workloads.interpreter import Interpreter, Options
    from splitbrain.workloads.registry import WORKLOADS

    async def main():
        n1 = FakeNode("n1", lambda r: "hang")
        n2 = FakeNode("n2", lambda r: {"ok": True, "value": None})
        for node in (n1, n2):
            await node.start()
        addrs = {"n1": n1.addr, "n2": n2.addr}
        with HistoryWriter(tmp_path / "history.jsonl") as writer:
            interpreter = Interpreter(
                WORKLOADS["register"], ["n1"], lambda p, home: Client(addrs, home, f"c{p}", 0.3,
                                                                      retries=1),
                None, writer, Options(concurrency=1, time_limit=0.5, final_timeout=2.0),
            )
            await interpreter.run()
        for node in (n1, n2):
            await node.close()
        return n1.requests, n2.requests

    first, second = asyncio.run(asyncio.wait_for(main(), 20))
    calls = [c for c in pair_calls(read_jsonl(tmp_path / "history.jsonl").ops)]
    retried = [c for c in calls if c.request == f"{first[0]['cid']}:{first[0]['seq']}"]
    assert len(retried) == 1  # one call, not one per attempt
    (call,) = retried
    assert call.type == "ok" and call.node == "n2"
    assert call.end - call.start >= 0.3e9  # the first attempt's timeout lies inside it
    assert second[0] == first[0]  # the retry is the same request

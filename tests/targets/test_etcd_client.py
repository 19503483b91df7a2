"""The etcd client against a scripted v3 JSON gateway: requests as etcd wants them, replies and
errors mapped to ok / fail / info."""

from __future__ import annotations

import asyncio
import base64

import pytest

from splitbrain.targets.etcd_client import EtcdClient, member_role
from tests.targets.fakehttp import FakeHttp

pytestmark = pytest.mark.timeout(30)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def run(behave, f, key, value, serializable=False):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        gateway = FakeHttp(behave)
        client = EtcdClient({"n1": await gateway.start()}, "n1", "c1", 0.5, serializable)
        try:
            return await client.invoke(f, key, value), gateway.requests
        finally:
            await client.close()
            await gateway.stop()

    return asyncio.run(main())


def test_register_read_is_a_range_of_the_json_value():
    kvs = {"kvs": [{"key": b64("k1"), "value": b64("3"), "mod_revision": "7"}]}
    out, reqs = run(lambda r: (200, kvs), "read", "k1", None)
    assert (out.type, out.value) == ("ok", 3)
    assert reqs == [{"method": "POST", "path": "/v3/kv/range", "body": {"key": b64("k1")}}]
    out, reqs = run(lambda r: (200, {}), "read", "k1", None, serializable=True)
    assert (out.type, out.value) == ("ok", None)  # absent
    assert reqs[0]["body"] == {"key": b64("k1"), "serializable": True}
    out, _ = run(lambda r: (200, {}), "get", "k1", None)
    assert (out.type, out.value) == ("ok", "")


def test_cas_is_a_txn_comparing_the_value():
    out, reqs = run(lambda r: (200, {"succeeded": True}), "cas", "k1", [1, 4])
    assert out.type == "ok"
    assert reqs[0]["path"] == "/v3/kv/txn"
    assert reqs[0]["body"] == {
        "compare": [{"key": b64("k1"), "target": "VALUE", "result": "EQUAL", "value": b64("1")}],
        "success": [{"requestPut": {"key": b64("k1"), "value": b64("4")}}]}
    out, _ = run(lambda r: (200, {}), "cas", "k1", [1, 4])  # the gateway omits false
    assert (out.type, out.error) == ("fail", "cas-mismatch")


def test_append_retries_a_lost_race_on_the_mod_revision():
    values = iter(["a;", "ab;"])
    revisions = iter(["5", "6"])
    succeeded = iter([False, True])

    def gateway(req):  # type: ignore[no-untyped-def]
        if req["path"] == "/v3/kv/range":
            return 200, {"kvs": [{"value": b64(next(values)), "mod_revision": next(revisions)}]}
        return 200, {"succeeded": next(succeeded)}

    out, reqs = run(gateway, "append", "k1", "c;")
    assert (out.type, out.value) == ("ok", "c;")
    txns = [r["body"] for r in reqs if r["path"] == "/v3/kv/txn"]
    assert [t["compare"][0]["mod_revision"] for t in txns] == ["5", "6"]
    assert txns[1]["success"][0]["requestPut"]["value"] == b64("ab;c;")


@pytest.mark.parametrize(("f", "reply", "expect"), [
    ("write", (400, {"error": "bad key", "code": 3}), ("fail", "bad key")),
    ("write", (429, {"error": "etcdserver: too many requests"}),
     ("fail", "etcdserver: too many requests")),
    ("write", (503, {"error": "etcdserver: request timed out", "code": 14}),
     ("info", "etcdserver: request timed out")),  # it may still commit
    ("read", (503, {"error": "etcdserver: request timed out", "code": 14}),
     ("fail", "etcdserver: request timed out")),
    ("write", "hang", ("info", "timeout")),
    ("put", "close", ("info", "connection-lost")),
])
def test_errors_map_to_fail_only_when_definite(f, reply, expect):
    out, _ = run(lambda r: reply, f, "k1", 1)
    assert (out.type, out.error) == expect


def test_leader_lookup_reads_the_maintenance_status():
    async def main():  # type: ignore[no-untyped-def]
        status = {"header": {"member_id": "42"}, "leader": "42", "raftTerm": "7"}
        gateway = FakeHttp(lambda r: (200, status))
        try:
            assert await member_role(await gateway.start(), 0.5) == (True, 7)
            assert gateway.requests[0]["path"] == "/v3/maintenance/status"
            status["leader"] = "43"
            assert await member_role(gateway.address, 0.5) == (False, 7)
        finally:
            await gateway.stop()

    asyncio.run(main())

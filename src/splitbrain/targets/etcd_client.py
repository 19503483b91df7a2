"""A client of etcd's v3 JSON gateway (HTTP/1.1, no gRPC), for the register and kv workloads.

    register read  -> POST /v3/kv/range                     value: JSON of the int, or absent
             write -> POST /v3/kv/put
             cas   -> POST /v3/kv/txn  compare VALUE == expected, then put; not succeeded: fail
    kv       get   -> POST /v3/kv/range                     value: the string ("" if absent)
             put   -> POST /v3/kv/put
             append-> range, then txn compare MOD == that mod revision (0: absent), then put the
                      value with the token appended; a lost race reads and tries again

Keys and values travel base64-encoded, as the gateway wants. Reads are linearizable unless the
client was made with serializable=True (etcd then answers from the member's local state,
possibly stale). Outcomes follow targets/client.py: a reply is ok, or `fail` for a definite
refusal (a compare that failed, an invalid request, too many requests); a timeout, a lost
connection or any other error after the request was sent is `info` for a write (etcd may have
applied it: "leader changed", "request timed out") and `fail` for a read. An append whose txns
all lost their compare, then whose read was lost, wrote nothing: `fail`.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from typing import Any

from splitbrain.targets.client import Lost, NotSent, Outcome, RoutedClient
from splitbrain.targets.http import HttpConnection

REGISTER = frozenset({"read", "write", "cas"})  # values are JSON (ints); kv values are strings
DEFINITE = ("etcdserver: too many requests",)  # errors etcd gives before proposing anything


class Refused(Exception):
    """etcd refused the request before doing anything (invalid argument, too many requests)."""


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def encode(f: str, value: object) -> str:
    return json.dumps(value) if f in REGISTER else str(value)


class EtcdClient(RoutedClient):
    def __init__(self, nodes: Mapping[str, tuple[str, int]], home: str, client_id: str,
                 timeout: float, serializable: bool = False) -> None:  # fmt: skip
        super().__init__(nodes, home, client_id, timeout)
        self.serializable = serializable
        self._conns: dict[str, HttpConnection] = {}

    async def _call(self, node: str, path: str, body: dict[str, Any], deadline: float
                    ) -> dict[str, Any]:  # fmt: skip
        conn = self._conns.setdefault(node, HttpConnection(self.nodes[node]))
        status, raw = await conn.request("POST", path, json.dumps(body).encode(), deadline)
        try:
            reply = json.loads(raw)
        except ValueError:
            raise Lost(f"http {status}: not JSON") from None
        if status == 200 and isinstance(reply, dict):
            return reply
        error = str(reply.get("error") or reply.get("message")) if isinstance(reply, dict) else ""
        if status == 400 or error in DEFINITE:
            raise Refused(error or f"http {status}")
        raise Lost(error or f"http {status}")

    async def _range(self, node: str, key: str, deadline: float) -> tuple[str | None, int]:
        """(value, mod revision) of a key; (None, 0) if absent."""
        body: dict[str, Any] = {"key": b64(key)}
        if self.serializable:
            body["serializable"] = True
        reply = await self._call(node, "/v3/kv/range", body, deadline)
        kvs = reply.get("kvs") or []
        if not kvs:
            return None, 0
        return unb64(kvs[0].get("value", "")), int(kvs[0].get("mod_revision", 0))

    async def _txn(self, node: str, key: str, compare: dict[str, Any], value: str,
                   deadline: float) -> bool:  # fmt: skip
        body = {"compare": [{"key": b64(key), **compare}],
                "success": [{"requestPut": {"key": b64(key), "value": b64(value)}}]}
        return (await self._call(node, "/v3/kv/txn", body, deadline)).get("succeeded") is True

    async def perform(self, node: str, f: str, key: str | None, value: object, request: str,
                      deadline: float) -> Outcome:  # fmt: skip
        k = key or ""
        try:
            if f in ("read", "get"):
                text, _ = await self._range(node, k, deadline)
                if f == "get":
                    return Outcome("ok", value=text or "", node=node, request=request)
                read = None if text is None else json.loads(text)
                return Outcome("ok", value=read, node=node, request=request)
            if f in ("write", "put"):
                await self._call(node, "/v3/kv/put", {"key": b64(k), "value": b64(
                    encode(f, value))}, deadline)  # fmt: skip
                return Outcome("ok", value=value, node=node, request=request)
            if f == "cas":
                expected, new = value  # type: ignore[misc]
                compare = {"target": "VALUE", "result": "EQUAL", "value": b64(encode(f, expected))}
                if await self._txn(node, k, compare, encode(f, new), deadline):
                    return Outcome("ok", value=value, node=node, request=request)
                return Outcome("fail", error="cas-mismatch", node=node, request=request)
            if f == "append":
                return await self._append(node, k, str(value), request, deadline)
        except Refused as exc:
            return Outcome("fail", error=str(exc), node=node, request=request)
        return Outcome("fail", error=f"unknown operation {f!r}", node=node, request=request)

    async def _append(self, node: str, key: str, token: str, request: str, deadline: float
                      ) -> Outcome:  # fmt: skip
        while True:
            try:
                text, revision = await self._range(node, key, deadline)
            except Lost as exc:  # every txn before lost its compare: nothing was written
                return Outcome("fail", error=f"read {exc}", node=node, request=request)
            compare = {"target": "MOD", "result": "EQUAL", "mod_revision": str(revision)}
            if await self._txn(node, key, compare, (text or "") + token, deadline):
                return Outcome("ok", value=token, node=node, request=request)

    async def close(self) -> None:
        for conn in self._conns.values():
            await conn.close()
        self._conns.clear()


async def member_role(address: tuple[str, int], timeout: float) -> tuple[bool, int] | None:
    """(is leader, raft term) from the member's maintenance status; None if it does not answer."""
    conn = HttpConnection(address)
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        status, raw = await conn.request("POST", "/v3/maintenance/status", b"{}", deadline)
        reply = json.loads(raw) if status == 200 else None
        if not isinstance(reply, dict):
            return None
        me = reply.get("header", {}).get("member_id")
        return (me is not None and reply.get("leader") == me, int(reply.get("raftTerm", 0)))
    except (NotSent, Lost, ValueError, TypeError, AttributeError):
        return None
    finally:
        await conn.close()

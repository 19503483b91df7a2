"""The generic client protocol of TOML targets: one JSON request, one JSON reply per operation,
over HTTP (POST to one path) or newline-delimited JSON over TCP. docs/targets.md documents it.

    request  {"id": "c3:17", "f": "cas", "key": "k2", "value": [1, 4]}
    reply    {"type": "ok", "value": ...}                 it happened (value: what a read read)
             {"type": "fail", "error": "cas-mismatch"}    it definitely did not happen
             {"type": "fail", "error": "not-leader", "leader": "n2"}   ask n2 (or the next node)
             {"type": "info", "error": "..."}             it may have happened

Operations: register read (value null; ok value = the value, null if never written), write v,
cas [expected, new] (a failed compare is fail "cas-mismatch"); kv get (ok value = the string,
"" or null if never written), put v, append v (v appended to the string); with the leader
capability, role (ok value {"leader": bool, "term": int}). The id is unique per operation: a
system may use it to apply a retried request once, and put it in its node events.
Transport failures follow targets/client.py: nothing sent -> the next node; sent and no reply
(timeout, connection lost, a reply that is not one of the above) -> info, or fail for a read.
Over HTTP a reply comes with a 2xx status; any other status without a reply body is "no reply".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from typing import Any

from splitbrain.targets.client import (
    READS,
    Lost,
    NotSent,
    Outcome,
    Redirect,
    RoutedClient,
    unknown,
)
from splitbrain.targets.http import HttpConnection

MAX_LINE = 16 * 1024 * 1024  # a reply line beyond this is garbage
ANSWERS = READS | {"role"}  # operations whose ok reply carries the value the client wants


def request_body(f: str, key: str | None, value: object, request: str) -> bytes:
    return json.dumps({"id": request, "f": f, "key": key, "value": value}).encode()


def outcome(reply: Any, f: str, value: object, node: str, request: str) -> Outcome:
    """The Outcome a reply says; Redirect for not-leader; Lost for a reply that says nothing."""
    if not isinstance(reply, dict) or reply.get("type") not in ("ok", "fail", "info"):
        raise Lost(f"bad reply: {json.dumps(reply)[:200]}")
    kind = reply["type"]
    error = reply.get("error")
    error = None if error is None else str(error)
    if kind == "fail" and error == "not-leader":
        leader = reply.get("leader")
        raise Redirect(leader if isinstance(leader, str) else None)
    if kind == "info":
        return unknown(f, error or "info", node, request)
    if kind == "fail":
        return Outcome("fail", error=error or "fail", node=node, request=request)
    read = reply.get("value")
    if f == "get" and read is None:
        read = ""  # a kv key never written reads as the empty string
    return Outcome("ok", value=read if f in ANSWERS else value, node=node, request=request)


class HttpJsonClient(RoutedClient):
    """POST the request to `path` on the node's client address."""

    def __init__(self, nodes: Mapping[str, tuple[str, int]], home: str, client_id: str,
                 timeout: float, path: str = "/") -> None:  # fmt: skip
        super().__init__(nodes, home, client_id, timeout)
        self.path = path
        self._conns: dict[str, HttpConnection] = {}

    async def perform(self, node: str, f: str, key: str | None, value: object, request: str,
                      deadline: float) -> Outcome:  # fmt: skip
        conn = self._conns.setdefault(node, HttpConnection(self.nodes[node]))
        status, body = await conn.request("POST", self.path, request_body(f, key, value, request),
                                          deadline)  # fmt: skip
        try:
            reply = json.loads(body)
        except ValueError:
            reply = None
        if not 200 <= status < 300 and not (isinstance(reply, dict) and "type" in reply):
            raise Lost(f"http {status}")
        return outcome(reply, f, value, node, request)

    async def close(self) -> None:
        for conn in self._conns.values():
            await conn.close()
        self._conns.clear()


class NdjsonClient(RoutedClient):
    """One JSON line out, one JSON line back, on one TCP connection per node."""

    def __init__(self, nodes: Mapping[str, tuple[str, int]], home: str, client_id: str,
                 timeout: float) -> None:  # fmt: skip
        super().__init__(nodes, home, client_id, timeout)
        self._conns: dict[str, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

    async def perform(self, node: str, f: str, key: str | None, value: object, request: str,
                      deadline: float) -> Outcome:  # fmt: skip
        conn = self._conns.get(node)
        if conn is None or conn[1].is_closing() or conn[0].at_eof():
            try:
                async with asyncio.timeout_at(deadline):
                    conn = await asyncio.open_connection(*self.nodes[node], limit=MAX_LINE)
            except (OSError, TimeoutError) as exc:
                raise NotSent(f"cannot connect to {node}: {exc}") from None
            self._conns[node] = conn
        reader, writer = conn
        try:
            writer.write(request_body(f, key, value, request) + b"\n")
            async with asyncio.timeout_at(deadline):
                line = await reader.readline()
        except TimeoutError:
            await self._drop(node)  # a late reply would answer the next request
            raise Lost("timeout") from None
        except (OSError, ValueError) as exc:
            await self._drop(node)
            raise Lost("connection-lost") from exc
        if not line.endswith(b"\n"):
            await self._drop(node)
            raise Lost("connection-lost")
        try:
            reply = json.loads(line)
        except ValueError:
            await self._drop(node)
            raise Lost(f"bad reply: {line[:200]!r}") from None
        if isinstance(reply, dict) and reply.get("id") not in (None, request):
            await self._drop(node)
            raise Lost(f"reply for {reply.get('id')!r}, not {request!r}")
        return outcome(reply, f, value, node, request)

    async def _drop(self, node: str) -> None:
        conn = self._conns.pop(node, None)
        if conn is not None:
            conn[1].transport.abort()
            with contextlib.suppress(Exception):
                await conn[1].wait_closed()

    async def close(self) -> None:
        for node in list(self._conns):
            await self._drop(node)

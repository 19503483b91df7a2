"""The Python client of the bundled Raft key-value server, used by the workloads.

Protocol (DESIGN.md, "Client API"): TCP, 4-byte length frames, one JSON object per frame.
Request `{"cid", "seq", "f", "key", "value"}`; reply `{"seq", "ok": true, "value"}` or
`{"seq", "ok": false, "error", "leader"}`; `{"seq", "f": "status"}` asks for a node's status and
`{"seq", "f": "crash-point", "value": NAME | null}` arms (or disarms) a crash point
(crashpoints.py): reply `{"seq", "ok": true}`, or `bad-request` with a `message`.

How errors become outcomes (the rules that keep the history honest):
- `not-leader` is a definite rejection before anything was appended, so the client follows the
  hint (or tries the next node) within the attempt's timeout; if no leader answers in time and
  no earlier attempt was sent: `fail`. After the first ask, a new one is sent only while a
  quarter of the timeout is left (`_LAST_ASK`): a request with no time left for its reply
  would only turn a refusal into an indeterminate operation.
- An attempt that may have taken effect — a timeout after the request was sent, the connection
  lost after sending, the leader losing leadership after appending — is retried (`retries`
  times) under the same (client id, seq), so the servers apply it at most once.
- `ok` only when a reply said ok. A definite error (`cas-mismatch`, `bad-request`) is `fail`,
  even after retries: a repeated request is answered with its first result, so the reply is
  the effect of the one application. For a write, if any attempt may have taken effect and
  no reply said what happened: `info`.
- `value-too-large` (the command is over kv.MAX_COMMAND bytes; a string value that long is
  refused here, without sending it) is definite like `cas-mismatch` and `bad-request`: `fail`.
- A read (get/read) changes nothing, so a read that did not complete is `fail`, whatever the
  reason: the checker need not consider it (as Jepsen's etcd client does).
Every Outcome carries `request` "<client id>:<seq>", the id the node events use for the entry:
one operation is one call however many attempts it took.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from splitbrain.raft import codec
from splitbrain.raft.kv import MAX_COMMAND, READS
from splitbrain.targets.client import Outcome

DEFINITE_ERRORS = frozenset(
    {"not-leader", "cas-mismatch", "bad-request", "not-a-string", "value-too-large"}
)
_RETRY_PAUSE = 0.01  # seconds between rounds of asking nodes for the leader
_LAST_ASK = 0.25  # after the first ask, no new one with less than this share of the timeout left


@dataclass(frozen=True, slots=True)
class _Attempt:
    """How one attempt of an operation ended."""

    status: Literal["ok", "definite", "refused", "maybe"]  # refused: never taken by any node
    error: str | None
    node: str | None = None  # the node that answered or was last sent the request
    value: Any = None  # the value an ok read returned


class _Connection(asyncio.Protocol):
    """One TCP connection to a node; replies are matched to requests by seq."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._reader = codec.FrameReader()
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            for body in self._reader.feed(data):
                reply = codec.decode_json(body)
                fut = self._waiting.pop(reply.get("seq"), None)  # type: ignore[arg-type]
                if fut is not None and not fut.done():
                    fut.set_result(reply)
        except codec.CodecError as exc:
            self._fail(ConnectionError(f"bad reply: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError("connection lost"))

    def _fail(self, exc: Exception) -> None:
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(exc)
        self._waiting.clear()

    def request(self, req: dict[str, Any]) -> asyncio.Future[dict[str, Any]]:
        """Send `req`; the future is its reply (ConnectionError if the connection dies)."""
        if self.closed or self.transport is None:
            raise ConnectionError("connection closed")
        fut = asyncio.get_running_loop().create_future()
        self._waiting[req["seq"]] = fut
        self.transport.write(codec.frame(codec.encode_json(req)))
        return fut

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


async def _connect(addr: tuple[str, int]) -> _Connection:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(_Connection, addr[0], addr[1])
    return conn


class Client:
    """A client of the cluster with one client id; one operation at a time per process.

    Its seqs start at 1, so a client id must name one Client only: the servers answer a
    repeated (client id, seq) with the first result (exactly once), not by applying it again.
    That is what makes retries safe: an attempt that may have taken effect without an answer
    (timeout, connection lost, leader-lost) is retried under the same (client id, seq), on the
    next node, up to `retries` times, each attempt within `timeout` seconds, as real clients
    do. The Outcome is that of the whole operation (see the module docstring).
    """

    def __init__(
        self,
        nodes: Mapping[str, tuple[str, int]],
        home: str,
        client_id: str,
        timeout: float,
        retries: int = 0,
    ) -> None:
        if home not in nodes:
            raise ValueError(f"home node {home!r} is not one of {sorted(nodes)}")
        if retries < 0:
            raise ValueError(f"retries must not be negative, got {retries}")
        self.nodes = dict(nodes)
        self.home = home
        self.client_id = client_id
        self.timeout = timeout
        self.retries = retries
        self._seq = itertools.count(1)
        self._conns: dict[str, _Connection] = {}
        self._order = sorted(nodes)

    async def invoke(self, f: str, key: str | None, value: Any) -> Outcome:
        """Perform one operation; never raises for network trouble (that is info or fail)."""
        seq = next(self._seq)
        rid = f"{self.client_id}:{seq}"
        req = {"cid": self.client_id, "seq": seq, "f": f, "key": key or "", "value": value}
        is_read = f in READS
        if isinstance(value, str) and len(value) > MAX_COMMAND:  # no node would take it
            return Outcome("fail", error="value-too-large", request=rid)
        target = self.home
        maybe: _Attempt | None = None  # the last attempt that may have taken effect
        for attempt in range(1 + self.retries):
            if attempt:
                await asyncio.sleep(_RETRY_PAUSE)
            last = await self._attempt(req, target)
            if last.status == "ok":
                return Outcome("ok", last.value if is_read else value, node=last.node,
                               request=rid)  # fmt: skip
            if last.status == "definite" or (last.status == "refused" and maybe is None):
                return Outcome("fail", error=last.error, node=last.node, request=rid)
            if last.status == "maybe":
                maybe = last
            target = self._after(last.node or target)
        if is_read or maybe is None:  # a read did not happen; a write that was never sent
            return Outcome("fail", error=last.error, node=last.node, request=rid)
        return Outcome("info", error=maybe.error, node=maybe.node, request=rid)

    async def _attempt(self, req: dict[str, Any], target: str) -> _Attempt:
        """Send `req` to `target`, following not-leader hints, within one timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        asked: set[str] = set()
        refusal = "no-leader"  # why no node took the request, if none does
        floor = 0.0  # the first ask may use the whole timeout
        while True:
            if deadline - loop.time() <= floor:
                return _Attempt("refused", refusal)
            floor = self.timeout * _LAST_ASK
            try:
                conn = self._conns.get(target)
                if conn is None or conn.closed:
                    async with asyncio.timeout_at(deadline):
                        conn = self._conns[target] = await _connect(self.nodes[target])
                reply_future = conn.request(req)
            except (OSError, TimeoutError, ConnectionError):
                target = self._after(target)  # nothing was sent: safe to try elsewhere
                await asyncio.sleep(min(_RETRY_PAUSE, max(0.0, deadline - loop.time())))
                continue
            try:
                async with asyncio.timeout_at(deadline):
                    reply = await reply_future
            except TimeoutError:
                self._drop(target)
                return _Attempt("maybe", "timeout", target)
            except ConnectionError:
                self._drop(target)
                return _Attempt("maybe", "connection-lost", target)
            if reply.get("ok"):
                return _Attempt("ok", None, target, reply.get("value"))
            error = str(reply.get("error"))
            if error == "not-leader":
                refusal = "not-leader"
                asked.add(target)
                hint = reply.get("leader")
                if hint in self.nodes and hint not in asked:
                    target = hint
                    continue
                asked.clear()  # a round without a usable hint: pause, then ask again
                target = self._after(target) if hint not in self.nodes else hint
                await asyncio.sleep(min(_RETRY_PAUSE, max(0.0, deadline - loop.time())))
                continue
            status = "definite" if error in DEFINITE_ERRORS else "maybe"
            return _Attempt(status, error, target)

    async def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    def _drop(self, node: str) -> None:
        conn = self._conns.pop(node, None)
        if conn is not None:
            conn.close()

    def _after(self, node: str) -> str:
        return self._order[(self._order.index(node) + 1) % len(self._order)]


async def _ask(addr: tuple[str, int], request: dict[str, Any], timeout: float
               ) -> dict[str, Any] | None:  # fmt: skip
    """One request on a connection of its own; None if the node is down or did not answer."""
    conn: _Connection | None = None
    try:
        async with asyncio.timeout(timeout):
            conn = await _connect(addr)
            return await conn.request({"seq": 0, **request})
    except (OSError, TimeoutError, ConnectionError, codec.CodecError):
        return None
    finally:
        if conn is not None:
            conn.close()


async def node_status(addr: tuple[str, int], timeout: float) -> dict[str, Any] | None:
    """{"id","role","term","leader","commit","applied","last_index"} of a node; None if down."""
    status = (await _ask(addr, {"f": "status"}, timeout) or {}).get("status")
    return status if isinstance(status, dict) else None


async def arm_crash_point(
    address: tuple[str, int], point: str | None, timeout: float = 1.0
) -> bool:
    """Arm crash point `point` on a node (None disarms); False if it is down or refused."""
    reply = await _ask(address, {"f": "crash-point", "value": point}, timeout)
    return reply is not None and reply.get("ok") is True

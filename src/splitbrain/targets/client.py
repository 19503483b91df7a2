"""The client role: what one operation came to, and the rules every target's client keeps.

    out = await client.invoke("cas", "k2", [1, 4])   # -> Outcome("ok" | "fail" | "info", ...)

DESIGN.md defines the outcomes: `ok` it happened; `fail` it definitely did not happen and never
will; `info` it may have happened. The rules shared by every client (ours, etcd's, the generic
HTTP and TCP ones):
- Nothing sent (the connection could not be opened): the operation cannot have happened, so the
  client may try another node within the operation's deadline; if none takes it, `fail`.
- Sent, then a timeout or a lost connection: a write is `info`; a read (read/get) changes nothing,
  so it is `fail` — the checker need not consider it (as Jepsen's etcd client does).
- A reply the system gives as definite (not the leader, compare failed, bad request) is `fail`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from splitbrain.raft.kv import READS  # the operations that change nothing (pure; no runtime)


@dataclass(frozen=True, slots=True)
class Outcome:
    type: Literal["ok", "fail", "info"]
    value: object = None  # ok read: the value read; ok write: the input value
    error: str | None = None  # why it failed or is indeterminate
    node: str | None = None  # the node that answered
    request: str | None = None  # "<client id>:<seq>", the id a target's node events may show


class Client(Protocol):
    """One worker's client of the cluster: one operation at a time, never raises for network
    trouble (that is an Outcome). `close()` releases its connections; the interpreter then
    invokes again on the same client (a new process after an `info`), which must open fresh
    ones and keep its client id and sequence numbers."""

    async def invoke(self, f: str, key: str | None, value: object) -> Outcome: ...
    async def close(self) -> None: ...


class NotSent(Exception):
    """Nothing reached the node (the connection could not be opened): safe to try elsewhere."""


class Lost(Exception):
    """The request was sent, then the reply never came (timeout, connection lost): it may have
    taken effect. The message is the error recorded ("timeout", "connection-lost")."""


def unknown(f: str, error: str, node: str | None = None, request: str | None = None) -> Outcome:
    """The outcome of an operation sent whose reply never came: `info`, or `fail` for a read."""
    return Outcome("fail" if f in READS else "info", error=error, node=node, request=request)


class Redirect(Exception):
    """The node definitely did not take the operation and names the node that would (or None)."""

    def __init__(self, leader: str | None) -> None:
        super().__init__(f"not-leader (leader: {leader})")
        self.leader = leader


RETRY_PAUSE = 0.01  # seconds between tries when no node took the operation


class RoutedClient:
    """A client that sends each operation to one node at a time, home node first, keeping the
    rules above: a node that cannot be reached (NotSent) or that redirects (Redirect) hands the
    operation to the next node, or the one it names, until the operation's deadline; once sent
    and lost (Lost), the operation is `unknown`. Subclasses implement `perform` and `close`.
    Request ids are "<client id>:<seq>", seq from 1 (a client id must name one client)."""

    def __init__(self, nodes: Mapping[str, tuple[str, int]], home: str, client_id: str,
                 timeout: float) -> None:  # fmt: skip
        if home not in nodes:
            raise ValueError(f"home node {home!r} is not one of {sorted(nodes)}")
        self.nodes = dict(nodes)
        self.home = home
        self.client_id = client_id
        self.timeout = timeout
        self._order = sorted(nodes)
        self._seq = itertools.count(1)

    async def perform(self, node: str, f: str, key: str | None, value: object, request: str,
                      deadline: float) -> Outcome:  # fmt: skip
        """One try on one node, within `deadline` (loop time); raises NotSent, Redirect, Lost."""
        raise NotImplementedError

    async def invoke(self, f: str, key: str | None, value: object) -> Outcome:
        request = f"{self.client_id}:{next(self._seq)}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        node, refusal = self.home, "unavailable"
        asked: set[str] = set()  # redirected by, since the last pause (no ping-pong)
        while loop.time() < deadline:
            try:
                return await self.perform(node, f, key, value, request, deadline)
            except Lost as exc:
                return unknown(f, str(exc), node, request)
            except Redirect as redirect:
                refusal = "not-leader"
                asked.add(node)
                if redirect.leader in self.nodes and redirect.leader not in asked:
                    node = redirect.leader
                    continue
                asked.clear()
                node = self._after(node)
            except NotSent:
                refusal = "unavailable"
                node = self._after(node)
            await asyncio.sleep(min(RETRY_PAUSE, max(0.0, deadline - loop.time())))
        return Outcome("fail", error=refusal, request=request)

    def _after(self, node: str) -> str:
        return self._order[(self._order.index(node) + 1) % len(self._order)]

    async def close(self) -> None:
        """Release every connection."""

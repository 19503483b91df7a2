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

from dataclasses import dataclass
from typing import Literal, Protocol

READS = frozenset({"read", "get"})  # the operations that change nothing, in every workload


@dataclass(frozen=True, slots=True)
class Outcome:
    type: Literal["ok", "fail", "info"]
    value: object = None  # ok read: the value read; ok write: the input value
    error: str | None = None  # why it failed or is indeterminate
    node: str | None = None  # the node that answered
    request: str | None = None  # "<client id>:<seq>", the id a target's node events may show


class Client(Protocol):
    """One process's connection to the cluster: one operation at a time, never raises for
    network trouble (that is an Outcome)."""

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

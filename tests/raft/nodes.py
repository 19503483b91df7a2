"""Helpers for tests that run real nodes of the bundled Raft: a bounded asyncio.run, and
one raw client request (to see exactly what a node replies)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from splitbrain.raft import codec


def run(coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
    """asyncio.run(coro), cancelled after `timeout` seconds (the test then fails)."""

    async def bounded() -> Any:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


async def raw_request(addr: tuple[str, int], req: dict[str, Any]) -> dict[str, Any]:
    """Send one request frame to a node's client port and return the reply frame, decoded."""
    reader, writer = await asyncio.open_connection(*addr)
    writer.write(codec.frame(codec.encode_json(req)))
    size = int.from_bytes(await reader.readexactly(4), "big")
    reply = codec.decode_json(await reader.readexactly(size))
    writer.close()
    return reply  # type: ignore[return-value]

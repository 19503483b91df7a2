"""Helpers for tests that run real nodes of the bundled Raft: a bounded asyncio.run."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


def run(coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
    """asyncio.run(coro), cancelled after `timeout` seconds (the test then fails)."""

    async def bounded() -> Any:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())

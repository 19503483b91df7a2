"""A control channel: JSON-line requests to a helper process and its one-line replies.

Shared by the link proxies' process (network.py) and the disk daemons (disks.py). One request
is in flight at a time (a lock), each reply is awaited for at most `timeout` seconds, and a
channel that fails — no answer in time, a broken pipe, the process gone — raises the caller's
error class naming `what` and the request's `op`; the caller judges the reply's content.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import psutil


class Channel:
    def __init__(self, what: str, proc: psutil.Popen, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, error: type[Exception], timeout: float) -> None:
        self.what, self.proc, self.writer = what, proc, writer
        self._reader, self._error, self._timeout = reader, error, timeout
        self._lock = asyncio.Lock()

    async def request(self, request: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            try:
                self.writer.write(json.dumps(request).encode() + b"\n")
                await self.writer.drain()
                line = await asyncio.wait_for(self._reader.readline(), self._timeout)
            except (OSError, TimeoutError) as exc:
                raise self._error(f"{self.what} did not answer {request['op']!r}: {exc}") from exc
        if not line:
            raise self._error(f"{self.what} exited (code {self.proc.poll()})")
        return json.loads(line)

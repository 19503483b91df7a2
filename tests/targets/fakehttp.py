"""A scripted HTTP/1.1 server on 127.0.0.1 for client tests: each request gets `behave(req)`.

`behave` gets {"method", "path", "body" (parsed JSON or None)} and returns (status, body dict),
"hang" (never answer) or "close" (close the connection without answering).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

Behaviour = Callable[[dict[str, Any]], Any]


class FakeHttp:
    def __init__(self, behave: Behaviour) -> None:
        self.behave = behave
        self.requests: list[dict[str, Any]] = []
        self.connections = 0
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> tuple[str, int]:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.address = self.server.sockets[0].getsockname()[:2]
        return self.address

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method, path, _ = lines[0].split(" ")
                headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                raw = await reader.readexactly(int(headers.get("Content-Length", 0)))
                req = {"method": method, "path": path, "body": json.loads(raw) if raw else None}
                self.requests.append(req)
                action = self.behave(req)
                if action == "close":
                    writer.close()
                    return
                if action == "hang":
                    await asyncio.Event().wait()
                status, body = action
                data = json.dumps(body).encode()
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: {len(data)}\r\n"
                             "Content-Type: application/json\r\n\r\n".encode() + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        self.server.close()
        for w in self._writers:
            w.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 1)

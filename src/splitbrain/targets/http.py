"""HTTP/1.1 on one kept-alive asyncio connection, h11 doing the protocol: for target clients and
readiness probes.

    conn = HttpConnection(("10.77.0.1", 2379))
    status, body = await conn.request("POST", "/v3/kv/range", b'{"key": "azE="}', deadline)
    await conn.close()

Why our own socket and h11 rather than a client library: a target's client must know whether a
request left. `request` raises NotSent when nothing was written (the connection could not be
opened in time: the operation cannot have happened, another node may be tried) and Lost once
the request was written and no complete response came (timeout, reset, garbage: it may have
happened). Every step is bounded by the operation's one deadline (loop time). A connection is
reused while both sides are done with the last exchange; a reply left unread or a half-read
response closes it.
"""

from __future__ import annotations

import asyncio
import contextlib

import h11

from splitbrain.targets.client import Lost, NotSent

MAX_BODY = 64 * 1024 * 1024  # a response beyond this is garbage, not an answer


class HttpConnection:
    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._h11: h11.Connection | None = None

    async def request(
        self, method: str, path: str, body: bytes = b"", deadline: float | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, bytes]:
        """(status, body) of one exchange; NotSent or Lost (see the module docstring)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 3600 if deadline is None else deadline
        if not self._usable():
            await self.close()
            try:
                async with asyncio.timeout_at(deadline):
                    self._reader, self._writer = await asyncio.open_connection(*self.address)
            except (OSError, TimeoutError) as exc:
                raise NotSent(f"cannot connect to {_show(self.address)}: {_why(exc)}") from None
            self._h11 = h11.Connection(our_role=h11.CLIENT)
        assert self._h11 is not None and self._writer is not None
        host = f"{self.address[0]}:{self.address[1]}"
        headers = [("Host", host), ("Content-Length", str(len(body)))]
        if body:
            headers.append(("Content-Type", content_type))
        try:
            data = self._h11.send(h11.Request(method=method, target=path, headers=headers))
            data = (data or b"") + (self._h11.send(h11.Data(data=body)) or b"") if body else data
            data = (data or b"") + (self._h11.send(h11.EndOfMessage()) or b"")
            self._writer.write(data)
            async with asyncio.timeout_at(deadline):
                return await self._response()
        except TimeoutError:
            await self.close()
            raise Lost("timeout") from None
        except (OSError, h11.ProtocolError, ValueError) as exc:
            await self.close()
            raise Lost("connection-lost") from exc
        except BaseException:
            await self.close()  # cancelled mid-exchange: the connection's state is unknown
            raise

    async def _response(self) -> tuple[int, bytes]:
        assert self._h11 is not None and self._reader is not None
        status, chunks, size = 0, [], 0
        while True:
            event = self._h11.next_event()
            if event is h11.NEED_DATA:
                self._h11.receive_data(await self._reader.read(65536))  # b"" = closed
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > MAX_BODY:
                    raise ValueError(f"response body over {MAX_BODY} bytes")
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("connection closed before the response ended")
        if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE:
            self._h11.start_next_cycle()
        else:
            await self.close()
        return status, b"".join(chunks)

    def _usable(self) -> bool:
        """Open, idle, and not closed by the server meanwhile (nothing would be sent on it)."""
        return (self._writer is not None and self._reader is not None
                and not self._writer.is_closing() and not self._reader.at_eof()
                and self._h11 is not None and self._h11.our_state is h11.IDLE)

    async def close(self) -> None:
        writer, self._writer, self._reader, self._h11 = self._writer, None, None, None
        if writer is not None:
            writer.transport.abort()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def _show(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


def _why(exc: BaseException) -> str:
    return "timeout" if isinstance(exc, TimeoutError) else (str(exc) or type(exc).__name__)

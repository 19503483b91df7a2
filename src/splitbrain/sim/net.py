"""The simulated TCP network: listeners, connections and transports in memory, in virtual time.

`SimNet(loop, latency)` makes `loop.create_server` / `loop.create_connection` (and so
`asyncio.start_server` / `open_connection`) work on the simulated loop. Rules it keeps, as TCP
does on one machine:

- A connection carries two byte streams, each in order. Every chunk written is delivered after
  `latency()` seconds, never before a chunk written earlier on the same stream: the latencies,
  drawn from the seeded rng, decide how messages of different connections interleave.
- Delivery runs in the receiving process (a paused process receives when it resumes; a dead one
  never). Bytes count against the sender's window (`WINDOW`) until the receiving protocol got
  them; beyond it they wait in the sender's transport (`get_write_buffer_size`), whose
  protocol is paused above the high-water mark (asyncio's flow control). `pause_reading()`
  holds received bytes in the receiver, so a slow reader fills its peer's buffer.
- Connecting to an address nobody listens on: ConnectionRefusedError after a round trip.
  `close()` sends FIN after the buffered bytes (the peer's `eof_received`); `abort()` and the
  death of a process send RST (the peer's `connection_lost(ConnectionResetError)`). Bytes that
  reach a closed endpoint are answered with RST. A killed process's listeners vanish at once.
- Nothing here reads a clock or an rng of its own: times come from the loop, delays from
  `latency`.
"""

from __future__ import annotations

import asyncio
import errno
from asyncio import transports
from collections.abc import Callable
from typing import Any

from splitbrain.sim.loop import _WORLD, Process, SimLoop, current_process

Address = tuple[str, int]
WINDOW = 1 << 20  # bytes in flight or unread per direction (the kernel's socket buffers)
FIRST_PORT = 40_000  # ports handed out for port 0
FIRST_LOCAL_PORT = 50_000  # the local ports of outgoing connections
ORDER_STEP = 1e-9  # seconds between two chunks of one stream, at least


class SimNet:
    def __init__(self, loop: SimLoop, latency: Callable[[], float]) -> None:
        self.loop = loop
        self.latency = latency
        self._listeners: dict[Address, _Listener] = {}
        self._next_port = FIRST_PORT
        self._next_local_port = FIRST_LOCAL_PORT
        self._endpoints: dict[_Endpoint, None] = {}  # open ones, in creation order
        loop.net = self

    # -- the loop's API --------------------------------------------------------------------

    async def create_server(self, factory: Callable[[], asyncio.BaseProtocol], host: Any,
                            port: Any) -> SimServer:  # fmt: skip
        if not isinstance(host, str) or not isinstance(port, int):
            raise ValueError(f"listen on (host, port), not {host!r}:{port!r}")
        if port == 0:
            port = self._free_port(host)
        addr = (host, port)
        if addr in self._listeners:
            raise OSError(errno.EADDRINUSE, f"[Errno {errno.EADDRINUSE}] address already in use: "
                          f"{host}:{port}")  # fmt: skip
        listener = _Listener(self, current_process(), addr, factory)
        self._listeners[addr] = listener
        if listener.proc is not None:
            listener.proc.own(listener, listener.close)
        return SimServer(self.loop, listener)

    async def create_connection(self, factory: Callable[[], asyncio.BaseProtocol], host: Any,
                                port: Any) -> tuple[_Endpoint, asyncio.BaseProtocol]:  # fmt: skip
        proc = current_process()
        addr = (str(host), int(port))
        await asyncio.sleep(self.latency())  # SYN on its way
        listener = self._listeners.get(addr)
        if listener is None:
            await asyncio.sleep(self.latency())  # RST on its way back
            raise ConnectionRefusedError(errno.ECONNREFUSED,
                                         f"Connect call failed {addr} (nobody listens)")
        local = ("127.0.0.1", self._next_local_port)
        self._next_local_port += 1
        ours = _Endpoint(self, proc, local, addr)
        theirs = _Endpoint(self, listener.proc, addr, local)
        ours.peer, theirs.peer = theirs, ours
        _call(listener.proc, theirs._accept, listener.factory)
        try:
            await asyncio.sleep(self.latency())  # SYN-ACK on its way back
        except BaseException:
            ours.abort()
            raise
        if ours._reset:
            raise ConnectionResetError(errno.ECONNRESET, "connection reset while connecting")
        protocol = factory()
        ours._attach(protocol)
        return ours, protocol

    def listening(self, addr: Address, proc: Process | None) -> bool:
        """Does `proc` listen on `addr`?"""
        listener = self._listeners.get(addr)
        return listener is not None and listener.proc is proc

    # -- bookkeeping -----------------------------------------------------------------------

    def _free_port(self, host: str) -> int:
        while (host, self._next_port) in self._listeners:
            self._next_port += 1
        port = self._next_port
        self._next_port += 1
        return port

    def close(self) -> None:
        """End of the world: every endpoint closed without callbacks (no transport left open)."""
        for ep in list(self._endpoints):
            ep._state = _CLOSED
        self._endpoints.clear()
        self._listeners.clear()


def _call(proc: Process | None, callback: Callable[..., Any], *args: Any) -> None:
    if proc is None:
        asyncio.get_running_loop().call_soon(callback, *args, context=_WORLD)
    else:
        proc.call_soon(callback, *args)


def _call_at(loop: SimLoop, proc: Process | None, when: float, callback: Callable[..., Any],
             *args: Any) -> None:  # fmt: skip
    """Deliver to `proc` at `when`: I/O, which a resumed process reads before its timers."""
    loop.call_io_at(when, callback, *args, context=_WORLD if proc is None else proc.context)


class _Listener:
    def __init__(self, net: SimNet, proc: Process | None, addr: Address,
                 factory: Callable[[], asyncio.BaseProtocol]) -> None:  # fmt: skip
        self.net, self.proc, self.addr, self.factory = net, proc, addr, factory
        self.serving = True

    def close(self) -> None:
        if self.serving:
            self.serving = False
            if self.net._listeners.get(self.addr) is self:
                del self.net._listeners[self.addr]
            if self.proc is not None:
                self.proc.disown(self)


class _Socket:
    """What `Server.sockets` offers: the listening address."""

    def __init__(self, addr: Address) -> None:
        self._addr = addr

    def getsockname(self) -> Address:
        return self._addr


class SimServer(asyncio.AbstractServer):
    def __init__(self, loop: SimLoop, listener: _Listener) -> None:
        self._loop = loop
        self._listener = listener

    def close(self) -> None:
        self._listener.close()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._listener.serving

    @property
    def sockets(self) -> tuple[_Socket, ...]:
        return (_Socket(self._listener.addr),) if self._listener.serving else ()

    async def start_serving(self) -> None:
        pass

    async def serve_forever(self) -> None:
        await self._loop.create_future()

    async def wait_closed(self) -> None:
        pass


_OPEN, _CLOSING, _CLOSED = "open", "closing", "closed"


class _Endpoint(transports._FlowControlMixin, asyncio.Transport):  # type: ignore[misc]
    """One end of a simulated TCP connection: the transport its process's protocol uses."""

    def __init__(self, net: SimNet, proc: Process | None, local: Address, remote: Address
                 ) -> None:  # fmt: skip
        super().__init__(extra={"sockname": local, "peername": remote, "socket": None},
                         loop=net.loop)  # fmt: skip
        self._net = net
        self._proc = proc
        self.peer: _Endpoint = self
        self._protocol: Any = None
        self._state = _OPEN
        self._reset = False  # an RST arrived before the protocol was attached
        self._sendq = bytearray()  # written, not yet in the window
        self._fin_queued = False  # close() or write_eof(): FIN once _sendq is empty
        self._fin_sent = False
        self._in_flight = 0  # our bytes the peer's protocol has not received yet
        self._last_at = 0.0  # delivery time of our last chunk: order within the stream
        self._received: list[bytes] = []  # arrived while reading is paused or unattached
        self._eof = False  # FIN arrived
        self._reading = True
        net._endpoints[self] = None
        if proc is not None:
            proc.own(self, self._killed)

    def __repr__(self) -> str:
        return f"<SimTransport {self._extra['sockname']}->{self._extra['peername']} {self._state}>"

    # -- connection setup ------------------------------------------------------------------

    def _accept(self, factory: Callable[[], asyncio.BaseProtocol]) -> None:
        if self._state is not _OPEN:
            return
        self._attach(factory())

    def _attach(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol
        protocol.connection_made(self)
        if self._received or self._eof or self._reset:
            _call(self._proc, self._deliver)

    # -- asyncio.Transport -----------------------------------------------------------------

    def get_protocol(self) -> Any:
        return self._protocol

    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol

    def is_closing(self) -> bool:
        return self._state is not _OPEN

    def is_reading(self) -> bool:
        return self._reading and self._state is not _CLOSED

    def pause_reading(self) -> None:
        self._reading = False

    def resume_reading(self) -> None:
        if not self._reading:
            self._reading = True
            if self._received or self._eof:
                _call(self._proc, self._deliver)

    def get_write_buffer_size(self) -> int:
        return len(self._sendq)

    def can_write_eof(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._state is not _OPEN or self._fin_queued or not data:
            return  # like asyncio: writing to a closing transport is silently ignored
        if not self._sendq and self._in_flight + len(data) <= WINDOW:  # the usual case
            chunk = bytes(data)
            self._in_flight += len(chunk)
            peer = self.peer
            _call_at(self._net.loop, peer._proc, self._at(), peer._receive, chunk)
            return
        self._sendq += data
        self._pump()
        self._maybe_pause_protocol()

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        if self._state is _OPEN and not self._fin_queued and not self._fin_sent:
            self._fin_queued = True
            self._pump()

    def close(self) -> None:
        if self._state is not _OPEN:
            return
        self._state = _CLOSING
        self._reading = False
        self._fin_queued = not self._fin_sent
        self._pump()

    def abort(self) -> None:
        if self._state is _CLOSED:
            return
        self._sendq.clear()
        self._send_rst()
        self._closed(None)

    # -- sending ---------------------------------------------------------------------------

    def _at(self) -> float:
        # After the stream's previous chunk (strictly: order never rests on how ties are broken).
        at = max(self._net.loop.time() + self._net.latency(), self._last_at + ORDER_STEP)
        self._last_at = at
        return at

    def _pump(self) -> None:
        """Move what the window allows from the send buffer onto the wire; FIN after it."""
        peer = self.peer
        room = WINDOW - self._in_flight
        if self._sendq and room > 0:
            chunk = bytes(self._sendq[:room])
            del self._sendq[:room]
            self._in_flight += len(chunk)
            _call_at(self._net.loop, peer._proc, self._at(), peer._receive, chunk)
        if self._fin_queued and not self._sendq:
            self._fin_queued, self._fin_sent = False, True
            _call_at(self._net.loop, peer._proc, self._at(), peer._receive_fin)
        if self._state is _CLOSING and self._fin_sent:
            self._closed(None)

    def _send_rst(self) -> None:
        peer = self.peer
        _call_at(self._net.loop, peer._proc, self._at(), peer._receive_rst)

    def _acked(self, count: int) -> None:
        """The peer's protocol received `count` of our bytes (runs in our process)."""
        self._in_flight -= count
        if self._state is not _CLOSED:
            self._pump()
            self._maybe_resume_protocol()

    def _closed(self, exc: Exception | None) -> None:
        """We are done: the protocol hears connection_lost soon (as asyncio calls it)."""
        self._state = _CLOSED
        self._net._endpoints.pop(self, None)
        if self._proc is not None:
            self._proc.disown(self)
        if self._protocol is not None:
            _call(self._proc, self._protocol.connection_lost, exc)

    def _killed(self) -> None:
        """Our process died: the kernel resets the connection; our protocol hears nothing."""
        if self._state is not _CLOSED:
            self._state = _CLOSED
            self._net._endpoints.pop(self, None)
            self._send_rst()

    # -- receiving (in our process) --------------------------------------------------------

    def _receive(self, chunk: bytes) -> None:
        if self._state is _CLOSED:
            if not self._reset:
                self._reset = True  # bytes for a closed socket: the kernel answers RST
                self._send_rst()
            return
        if self._protocol is None or not self._reading or self._received:
            self._received.append(chunk)
            return
        self._consumed(len(chunk))
        self._protocol.data_received(chunk)

    def _consumed(self, count: int) -> None:
        sender = self.peer
        if sender._sendq or sender._protocol_paused:  # it waits for window: tell it (an ACK)
            _call_at(self._net.loop, sender._proc, self._net.loop.time() + self._net.latency(),
                     sender._acked, count)  # fmt: skip
        else:
            sender._in_flight -= count

    def _receive_fin(self) -> None:
        self._eof = True
        if self._state is not _CLOSED and not self._received:
            self._deliver()

    def _receive_rst(self) -> None:
        if self._state is _CLOSED:
            return
        self._reset = True
        self._received.clear()
        self._sendq.clear()
        if self._protocol is not None:
            self._closed(ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"))
        else:
            self._state = _CLOSED
            self._net._endpoints.pop(self, None)

    def _deliver(self) -> None:
        """Hand what was held back to the protocol (reading resumed, or it was attached)."""
        if self._protocol is None or self._state is _CLOSED:
            return
        while self._received and self._reading:
            chunk = self._received.pop(0)
            self._consumed(len(chunk))
            self._protocol.data_received(chunk)
            if self._state is _CLOSED:
                return
        if self._eof and not self._received and self._reading:
            self._eof = False
            keep_open = self._protocol.eof_received()
            if not keep_open:
                self.close()

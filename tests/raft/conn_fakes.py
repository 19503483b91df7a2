"""A node's connection objects without sockets: a Server that is built but not run, and a
transport that records what it is asked to do (tests/raft/test_connections.py, test_fuzz.py)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any

from splitbrain.raft import codec
from splitbrain.raft.server import NodeConfig, Server


class FakeTransport:
    """Writes pile up in `unsent` until a test drains them (sets it back to 0)."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.unsent = 0
        self.reading = True
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written.append(data)
        self.unsent += len(data)

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def replies(self) -> list[dict]:
        out = []
        for data in self.written:
            out += [codec.decode_json(body) for body in codec.FrameReader().feed(data)]
        return out


@contextmanager
def built_server(tmp: Path, secret: bytes | None = None, **options: Any):
    """Node n1 of {n1, n2}, with its log and events under `tmp`; never listening. `options`:
    more NodeConfig fields."""
    config = NodeConfig(
        id="n1",
        cluster={"n1": ("127.0.0.1", 1), "n2": ("127.0.0.1", 2)},
        client_port=3,
        data_dir=tmp / "data",
        events_path=tmp / "events.jsonl",
        fsync=False,
        secret=secret,
        **options,
    )
    server = Server(config)
    try:
        yield server
    finally:
        server.wal.close()
        server.events.close()

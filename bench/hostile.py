"""The probes of issue 10 against 3 local nodes of the bundled Raft: prints one JSON object.

    python bench/hostile.py [--probe NAME]... [--catch-up-puts 600]

Each probe runs on a fresh cluster and reports what happened to the node it aimed at: its RSS
(MiB) before, at the peak (sampled every 20 ms) and after, whether every node is still alive,
and what the probe observed.
- `forged-term`: a hello and a HEARTBEAT of term 2**64 - 1 on a peer port.
- `partial-frames`: 10 connections to a client port, each sending 60 MiB of a frame announced
  as 60 MiB + 1 (never completed), then 10 more to a peer port.
- `many-partial-frames`: 200 client connections, each sending 3.9 MiB of a frame under the
  per-connection limit: what the per-node budget is for.
- `unread-replies`: a client that pipelines 1,000 reads of a 256 KiB value and never reads.
- `catch-up`: 600 puts of 150 KiB (`--catch-up-puts`) while a follower is down, then restart
  it: seconds until it has applied everything (null: not within 60 s).

The probes use only the client API and raw sockets, so the same script measures an older
checkout (run it with that checkout's `src` first on PYTHONPATH).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil

from splitbrain.raft.client import Client
from splitbrain.raft.local import LocalCluster

MIB = 1024 * 1024


def _frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


async def _stream(addr: tuple[str, int], header: bytes, size: int) -> str:
    """Send `header` then `size` bytes; what became of the connection."""
    try:
        _, writer = await asyncio.open_connection(*addr)
    except OSError as exc:
        return f"refused: {exc}"
    try:
        writer.write(header)
        chunk = b"x" * MIB
        for _ in range(size // MIB):
            writer.write(chunk)
            await asyncio.wait_for(writer.drain(), 10)
        return "sent"
    except (OSError, TimeoutError) as exc:
        return f"closed by the node: {type(exc).__name__}"
    finally:
        writer.transport.abort()


class Sampler:
    """The peak RSS of a process, sampled in the background."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    def rss(self) -> float:
        try:
            return self.proc.memory_info().rss / MIB
        except psutil.Error:
            return 0.0

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, self.rss())
            await asyncio.sleep(0.02)

    def __enter__(self) -> Sampler:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def forged_term(c: LocalCluster, target: str) -> dict[str, Any]:
    src = next(n for n in c.names if n != target)
    hello = json.dumps({"hello": 1, "cluster": "splitbrain", "src": src, "dst": target})
    heartbeat = struct.pack(">BQQQQBQQHHIIQBI", 8, 2**64 - 1, 0, 0, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 0)
    _, writer = await asyncio.open_connection(*c.peer_addresses[target])
    writer.write(_frame(hello.encode()) + _frame(heartbeat + src.encode() + target.encode()))
    await writer.drain()
    await asyncio.sleep(3)
    writer.transport.abort()
    return {}


async def partial_frames(c: LocalCluster, target: str) -> dict[str, Any]:
    header = (60 * MIB + 1).to_bytes(4, "big")
    outcomes = {}
    for port_kind, addr in (("client", c.client_addresses[target]),
                            ("peer", c.peer_addresses[target])):
        results = await asyncio.gather(*(_stream(addr, header, 60 * MIB) for _ in range(10)))
        outcomes[port_kind] = sorted(set(results))
    return {"connections": outcomes}


async def many_partial_frames(c: LocalCluster, target: str) -> dict[str, Any]:
    size = 4 * MIB - 100 * 1024
    header = (size + 1).to_bytes(4, "big")
    addr = c.client_addresses[target]
    results = await asyncio.gather(*(_stream(addr, header, size) for _ in range(200)))
    return {"connections": {r: results.count(r) for r in sorted(set(results))}}


async def unread_replies(c: LocalCluster, target: str) -> dict[str, Any]:
    client = Client(c.client_addresses, target, "setup", 5.0)
    put = await client.invoke("put", "big", "v" * 256 * 1024)
    await client.close()
    _, writer = await asyncio.open_connection(*c.client_addresses[target])
    for seq in range(1, 1001):
        request = {"cid": "reader", "seq": seq, "f": "get", "key": "big", "value": None}
        writer.write(_frame(json.dumps(request).encode()))
    await asyncio.sleep(5)  # never reading
    writer.transport.abort()
    return {"setup_put": put.type}


async def catch_up(c: LocalCluster, target: str, puts: int) -> dict[str, Any]:
    follower = next(n for n in c.names if n != target)
    c.kill(follower)
    clients = [Client(c.client_addresses, target, f"w{i}", 10.0) for i in range(6)]
    value = "v" * 150 * 1024

    async def put(i: int, client: Client) -> list[str]:
        outcomes = [await client.invoke("put", f"k{i}", value) for _ in range(puts // 6)]
        return [o.type if o.type == "ok" else f"{o.type} {o.error}" for o in outcomes]

    types = [t for batch in await asyncio.gather(*(put(i, cl) for i, cl in enumerate(clients)))
             for t in batch]
    for client in clients:
        await client.close()
    c.start(follower)
    started = time.perf_counter()
    try:
        await c.wait_caught_up(follower, timeout=60)
        seconds: float | None = round(time.perf_counter() - started, 2)
    except TimeoutError:
        seconds = None
    return {"puts": {t: types.count(t) for t in sorted(set(types))}, "caught_up_s": seconds}


PROBES: dict[str, Callable[..., Awaitable[dict[str, Any]]]] = {
    "forged-term": forged_term,
    "partial-frames": partial_frames,
    "many-partial-frames": many_partial_frames,
    "unread-replies": unread_replies,
    "catch-up": catch_up,
}


async def probe(name: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    with LocalCluster(root) as c:
        c.start_all()
        target = await c.wait_leader(30)
        sampler = Sampler(c.procs[target].pid)
        before = sampler.rss()
        with sampler:
            extra = (args.catch_up_puts,) if name == "catch-up" else ()
            seen = await PROBES[name](c, target, *extra)
            await asyncio.sleep(0.5)
        log = (c.node_dir(target) / "node.log").read_text()
        return {
            "target": target,
            "rss_mib": {"before": round(before, 1), "peak": round(sampler.peak, 1),
                        "after": round(sampler.rss(), 1)},
            "alive": {n: c.alive(n) for n in c.names},
            "tracebacks_in_log": log.count("Traceback"),
            "warnings_in_log": sum(" WARNING " in line for line in log.splitlines()),
            **seen,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probe", action="append", choices=sorted(PROBES),
                        help="run only these (default: all)")
    parser.add_argument("--catch-up-puts", type=int, default=600)
    args = parser.parse_args()
    out: dict[str, Any] = {"python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory(prefix="splitbrain-hostile-") as tmp:
        for name in args.probe or PROBES:
            out[name] = asyncio.run(probe(name, Path(tmp) / name, args))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

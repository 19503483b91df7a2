"""Benchmark of one link proxy: prints one JSON object.

    python bench/proxy.py [--messages 50000] [--size 200] [--pings 2000] [--trials 3]

Measures, for a direct TCP connection and for the same traffic through a link proxy (hosted in
the proxy process, as in a run, with no faults set):
- throughput: `--messages` frames of `--size` bytes sent as fast as the sender can (writes of
  100 frames; the proxy parses and forwards every frame), messages/s
  from the first write to the receiver having the last one;
- latency: `--pings` single frames, each sent once the previous one arrived, p50/p99 of the
  one-way time (sender and receiver share this process's monotonic clock).
The proxy's cost is the difference ("added_latency_us"); each figure is the median of
`--trials` interleaved trials. Sender and receiver share one asyncio
loop in this process, the proxy runs in its own; all on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time

from splitbrain.cluster.lifeline import Lifeline
from splitbrain.cluster.network import Network
from splitbrain.cluster.ports import HOST


class Receiver:
    """Counts frames and notes when each ping arrived."""

    def __init__(self) -> None:
        self.count = 0
        self.want = 0
        self.done = asyncio.Event()
        self.arrived: asyncio.Queue[float] = asyncio.Queue()
        self.closed = asyncio.Event()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buf = bytearray()
        try:
            while data := await reader.read(1 << 16):
                buf += data
                while len(buf) >= 4 and len(buf) >= 4 + (n := int.from_bytes(buf[:4], "big")):
                    del buf[: 4 + n]
                    self.count += 1
                    self.arrived.put_nowait(time.perf_counter())
                    if self.count == self.want:
                        self.done.set()
        finally:
            writer.close()
            self.closed.set()


def quantile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def median_of(trials: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(t[k] for t in trials) for k in trials[0]}


async def measure(port: int, receiver: Receiver, args: argparse.Namespace) -> dict[str, float]:
    _, writer = await asyncio.open_connection(HOST, port)
    frame = (args.size - 4).to_bytes(4, "big") + b"x" * (args.size - 4)
    receiver.count, receiver.want = 0, 1
    receiver.done.clear()
    writer.write(frame)  # the hello: the proxy connects upstream on the first frame's arrival
    await asyncio.wait_for(receiver.done.wait(), 10)

    latencies = []
    for _ in range(args.pings):
        while not receiver.arrived.empty():
            receiver.arrived.get_nowait()
        sent = time.perf_counter()
        writer.write(frame)
        latencies.append(await asyncio.wait_for(receiver.arrived.get(), 10) - sent)

    receiver.count, receiver.want = 0, args.messages
    receiver.done.clear()
    start = time.perf_counter()
    batch = frame * 100
    for _ in range(args.messages // 100):
        writer.write(batch)
        await writer.drain()
    await asyncio.wait_for(receiver.done.wait(), 120)
    elapsed = time.perf_counter() - start
    receiver.closed.clear()
    writer.close()
    await writer.wait_closed()
    await asyncio.wait_for(receiver.closed.wait(), 10)  # the receiver saw the end: nothing left
    return {
        "messages_per_s": round(args.messages / elapsed),
        "latency_p50_us": round(quantile(latencies, 0.5) * 1e6, 1),
        "latency_p99_us": round(quantile(latencies, 0.99) * 1e6, 1),
        "latency_mean_us": round(statistics.fmean(latencies) * 1e6, 1),
    }


async def main(args: argparse.Namespace) -> dict[str, object]:
    receiver = Receiver()
    server = await asyncio.start_server(receiver.serve, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    lifeline = Lifeline()
    network = await Network.start({"a": (HOST, port), "b": (HOST, port)}, lifeline)
    directs, proxieds = [], []
    try:
        for _ in range(args.trials):  # interleaved, so load from elsewhere hits both alike
            directs.append(await measure(port, receiver, args))
            proxieds.append(await measure(network.ports[("a", "b")], receiver, args))
        through = (await network.stats())[("a", "b")]["delivered"]
        if through != args.trials * (1 + args.pings + args.messages):
            raise SystemExit(f"the proxy delivered {through} messages, not all of them")
    finally:
        network.close()
        lifeline.close()
        server.close()
    direct, proxied = median_of(directs), median_of(proxieds)
    return {
        "benchmark": "link proxy (one directed link, no faults)",
        "messages": args.messages,
        "message_bytes": args.size,
        "pings": args.pings,
        "trials": args.trials,
        "direct": direct,
        "proxy": proxied,
        "added_latency_us": {
            "p50": round(proxied["latency_p50_us"] - direct["latency_p50_us"], 1),
            "p99": round(proxied["latency_p99_us"] - direct["latency_p99_us"], 1),
        },
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=200, help="bytes per frame, header included")
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument("--trials", type=int, default=3, help="medians over this many")
    args = parser.parse_args()
    if args.size < 4 or args.messages < 100 or args.pings < 1 or args.trials < 1:
        parser.error("need --size >= 4, --messages >= 100, --pings >= 1, --trials >= 1")
    args.messages -= args.messages % 100
    json.dump(asyncio.run(main(args)), sys.stdout, indent=2)
    print()

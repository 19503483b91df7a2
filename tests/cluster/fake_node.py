"""A stand-in node for cluster tests: speaks the node command line and the peer framing only.

It listens on its peer and client ports, sends every peer (through the address it was given,
i.e. the link proxy) a hello frame and then a numbered frame every 10 ms, and counts the frames
it receives per sender. On the client port, a line "stats" gets one JSON line back:
{"seqs": {sender: [numbers received, in arrival order]}}. It exits when the lifeline closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

from splitbrain.cluster.lifeline import watch_lifeline


def frame(obj: object) -> bytes:
    body = json.dumps(obj).encode()
    return len(body).to_bytes(4, "big") + body


async def main(args: argparse.Namespace) -> None:
    peers = dict(entry.split("=", 1) for entry in args.cluster.split(","))
    seqs: dict[str, list[int]] = {}

    async def on_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sender = None
        try:
            while True:
                n = int.from_bytes(await reader.readexactly(4), "big")
                msg = json.loads(await reader.readexactly(n))
                if sender is None:
                    sender = msg["from"]
                    seqs.setdefault(sender, [])
                else:
                    seqs[sender].append(msg["seq"])
        except (asyncio.IncompleteReadError, OSError):
            writer.close()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            if line.strip() == b"stats":
                writer.write(json.dumps({"seqs": seqs}).encode() + b"\n")
                await writer.drain()
        writer.close()

    async def send_to(peer: str, address: str) -> None:
        host, port = address.rsplit(":", 1)
        seq = 0
        while True:
            try:
                _, writer = await asyncio.open_connection(host, int(port))
                writer.write(frame({"from": args.id, "to": peer}))
                while True:
                    seq += 1
                    writer.write(frame({"seq": seq}))
                    await writer.drain()
                    await asyncio.sleep(0.01)
            except OSError:
                await asyncio.sleep(0.05)

    own_host, own_port = peers[args.id].rsplit(":", 1)
    await asyncio.start_server(on_peer, own_host, int(own_port))
    await asyncio.start_server(on_client, own_host, args.client_port)
    tasks = [asyncio.create_task(send_to(p, a)) for p, a in peers.items() if p != args.id]
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("--id", "--cluster", "--data-dir", "--events", "--log", "--cluster-id"):
        parser.add_argument(name, required=True)
    parser.add_argument("--client-port", type=int, required=True)
    parser.add_argument("--lifeline-fd", type=int, required=True)
    parser.add_argument("--unsafe", action="append", default=[])
    parser.add_argument("--secret-file")  # it does not authenticate: the proxies are tested
    args = parser.parse_args()
    watch_lifeline(args.lifeline_fd)
    with open(args.events, "a") as f:
        f.write(json.dumps({"time": time.time_ns(), "event": "start", "pid": os.getpid()}) + "\n")
    asyncio.run(main(args))

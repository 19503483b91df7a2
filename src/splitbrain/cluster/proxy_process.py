"""The proxy process: one OS process hosting the link proxy of every directed link.

It runs apart from the driver so client load and the proxies do not share one event loop, and
it dies with the driver (lifeline pipe, parent-death signal, and EOF on the control channel).
The driver talks to it over a socketpair, one JSON object per line, one reply per request:

    {"op": "links", "links": [[src, dst, host, port], ...], "framed": true}
                                                 -> {"ports": [[src, dst, port], ...]}
    {"op": "cut", "links": [[src, dst], ...], "stall": false}
                                                 cut (or stall) exactly these, heal the others
    {"op": "faults", "links": [[src, dst], ...], "faults": {"drop": 0.2, ...}}
    {"op": "clear-faults"}
    {"op": "stats"}                              -> {"stats": [[src, dst, {...}], ...]}

A reply is {"ok": true, ...} or {"ok": false, "error": "one line"}.
Run as: python -m splitbrain.cluster.proxy_process --control-fd N --lifeline-fd M --seed S
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sys
from typing import Any

from splitbrain.cluster.faults import LinkFaults
from splitbrain.cluster.lifeline import watch_lifeline
from splitbrain.cluster.proxy import LinkProxy

Link = tuple[str, str]


class ProxyHost:
    """Every link proxy of the cluster, and the handler of control requests."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.links: dict[Link, LinkProxy] = {}

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "links":
            ports = []
            for src, dst, host, port in request["links"]:
                # One rng per link, seeded by name, so a link's faults don't depend on others'.
                rng = random.Random(f"{self.seed}:{src}->{dst}")
                proxy = LinkProxy(src, dst, (host, int(port)), rng,
                                  framed=request.get("framed", True))
                self.links[(src, dst)] = proxy
                ports.append([src, dst, await proxy.listen()])
            return {"ports": ports}
        if op == "cut":
            cut = {self._link(link) for link in request["links"]}
            stall = request.get("stall", False)
            if not isinstance(stall, bool):
                raise ValueError(f"stall must be true or false, not {stall!r}")
            for link, proxy in self.links.items():
                proxy.set_cut(link in cut, stall)
            return {}
        if op == "faults":
            faults = LinkFaults.from_json(request["faults"])
            links = [self._link(link) for link in request["links"]]
            raw = [f"{s}->{d}" for s, d in links if not self.links[(s, d)].framed]
            if raw and faults.active():
                raise ValueError(f"link {raw[0]} carries no frames: it can only be cut")
            for link in links:
                self.links[self._link(link)].set_faults(faults)
            return {}
        if op == "clear-faults":
            for proxy in self.links.values():
                proxy.set_faults(LinkFaults())
            return {}
        if op == "stats":
            return {"stats": [[s, d, p.stats.to_json()] for (s, d), p in self.links.items()]}
        raise ValueError(f"unknown op {op!r}")

    async def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """The reply to a request: {"ok": true, ...} or {"ok": false, "error": "one line"}."""
        try:
            return {"ok": True, **await self.handle(request)}
        except (ValueError, KeyError, TypeError) as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    def _link(self, link: list[str]) -> Link:
        src, dst = link
        if (src, dst) not in self.links:
            raise ValueError(f"no link {src}->{dst}")
        return (src, dst)

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self.links.values()))


async def serve(control_fd: int, seed: int) -> None:
    host = ProxyHost(seed)
    reader, writer = await asyncio.open_unix_connection(sock=socket.socket(fileno=control_fd))
    try:
        while line := await reader.readline():
            try:
                request = json.loads(line)
            except ValueError as exc:
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            else:
                reply = await host.answer(request)
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
    finally:
        await host.close()  # the driver closed the channel (or died): stop forwarding


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="splitbrain-proxies")
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--lifeline-fd", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    watch_lifeline(args.lifeline_fd)
    asyncio.run(serve(args.control_fd, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())

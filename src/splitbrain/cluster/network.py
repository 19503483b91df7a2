"""The driver's handle on the network: the proxy process and what is cut or faulty right now.

A grudge maps each node to the nodes whose traffic it drops; applying one cuts exactly the
links src -> dst with src in grudge[dst] and heals every other link, so grudges replace each
other rather than pile up. A cut drops what it holds up (connections are cut) or, applied with
`stall`, stalls it (connections live on, their backlog arrives at the heal: proxy.py). All
methods that touch the proxies are async (a request/reply on the control channel); `cut` and
`faults` reflect what the proxy process acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

from splitbrain.cluster.channel import Channel
from splitbrain.cluster.faults import LinkFaults
from splitbrain.cluster.lifeline import Lifeline
from splitbrain.cluster.ports import HOST
from splitbrain.cluster.process import spawn, stop_all

Link = tuple[str, str]  # (src, dst): the directed link carrying src's messages to dst
Grudge = Mapping[str, Iterable[str]]

REQUEST_TIMEOUT = 10.0


class NetworkError(RuntimeError):
    """The proxy process refused a request or stopped answering."""


def grudge_links(grudge: Grudge, nodes: Sequence[str]) -> frozenset[Link]:
    """The directed links a grudge cuts: src -> dst for every src in grudge[dst]."""
    known = set(nodes)
    links = {(src, dst) for dst, srcs in grudge.items() for src in srcs}
    for n in sorted({n for link in links for n in link} | set(grudge)):
        if n not in known:
            raise ValueError(f"grudge names unknown node {n!r}")
    return frozenset((src, dst) for src, dst in links if src != dst)


class Links:
    """The link proxies of every ordered pair of `nodes`, driven by requests to whatever hosts
    them (proxy_process.ProxyHost): the proxy process here, the simulator's proxies process
    in splitbrain.sim. Subclasses provide `_request`."""

    def __init__(self, nodes: Sequence[str]) -> None:
        self.nodes = tuple(nodes)
        self.ports: dict[Link, int] = {}
        self.cut: frozenset[Link] = frozenset()
        self.faults: dict[Link, LinkFaults] = {}

    # Whether every cut stalls, whatever was asked (a firewall's drops stall live TCP).
    always_stalls = False

    async def _request(self, request: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def _open(self, targets: Mapping[str, tuple[str, int]], framed: bool = True) -> None:
        """Start a proxy per link; link i->j forwards to targets[j] (j's real peer address).
        `framed`: the peer traffic is length-prefixed frames (see proxy_process.py)."""
        links = [[s, d, *targets[d]] for s in targets for d in targets if s != d]
        reply = await self._request({"op": "links", "links": links, "framed": framed})
        self.ports = {(s, d): port for s, d, port in reply["ports"]}

    def address(self, src: str, dst: str) -> tuple[str, int]:
        """Where node src must send its messages for dst."""
        return (HOST, self.ports[(src, dst)])

    async def apply_grudge(self, grudge: Grudge, stall: bool = False) -> frozenset[Link]:
        """Cut (or stall) exactly the links of `grudge`, healing all others; returns them."""
        links = grudge_links(grudge, self.nodes)
        await self._request({"op": "cut", "links": sorted(links), "stall": stall})
        self.cut = links
        return links

    async def heal(self) -> None:
        await self._request({"op": "cut", "links": []})
        self.cut = frozenset()

    async def set_link_faults(self, links: Iterable[Link], faults: LinkFaults) -> None:
        links = sorted(set(links))
        for s, d in links:
            if (s, d) not in self.ports:
                raise ValueError(f"no link {s}->{d}")
        await self._request({"op": "faults", "links": links, "faults": faults.to_json()})
        for link in links:
            self.faults[link] = faults

    async def clear_link_faults(self) -> None:
        await self._request({"op": "clear-faults"})
        self.faults = {}

    async def stats(self) -> dict[Link, dict[str, int]]:
        reply = await self._request({"op": "stats"})
        return {(s, d): st for s, d, st in reply["stats"]}


def checked(op: str, reply: dict[str, Any]) -> dict[str, Any]:
    """The reply of a proxy host to request `op`; NetworkError if it refused."""
    if not reply.get("ok"):
        raise NetworkError(f"proxy process refused {op!r}: {reply.get('error')}")
    return reply


class Network(Links):
    """Link proxies for every ordered pair of `nodes`, hosted by one proxy process."""

    def __init__(
        self,
        nodes: Sequence[str],
        proc: psutil.Popen,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        super().__init__(nodes)
        self.proc = proc
        self._channel = Channel("proxy process", proc, reader, writer, NetworkError,
                                REQUEST_TIMEOUT)

    @classmethod
    async def start(
        cls,
        targets: Mapping[str, tuple[str, int]],
        lifeline: Lifeline,
        seed: int = 0,
        output: Path | None = None,
        framed: bool = True,
    ) -> Network:
        """Start the proxy process; link i->j forwards to targets[j] (j's real peer address).
        Its stdout and stderr go to `output` (default: inherited). `framed`: the peer traffic is
        length-prefixed messages the proxies may act on one by one; otherwise they forward
        bytes as they come and can only cut links."""
        ours, theirs = socket.socketpair()
        try:
            proc = spawn(
                [
                    sys.executable,
                    "-m",
                    "splitbrain.cluster.proxy_process",
                    "--control-fd",
                    str(theirs.fileno()),
                    "--lifeline-fd",
                    str(lifeline.fd),
                    "--seed",
                    str(seed),
                ],
                lifeline,
                pass_fds=(theirs.fileno(),),
                output=output,
            )
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        net = cls(list(targets), proc, reader, writer)
        try:
            await net._open(targets, framed)
        except BaseException:
            net.close()
            raise
        return net

    async def _request(self, request: dict[str, Any]) -> dict[str, Any]:
        return checked(request["op"], await self._channel.request(request))

    def close(self) -> None:
        """Synchronous: closing the channel tells the proxy process to exit; then reap it."""
        self._channel.writer.close()
        with contextlib.suppress(psutil.TimeoutExpired):
            self.proc.wait(timeout=2.0)  # let it close its connections in order
        stop_all([self.proc], grace=1.0)

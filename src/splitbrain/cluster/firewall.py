"""Partitions and packet loss in netns mode: nftables rules in every node's namespace.

    net = await NftNetwork.start(nodes, peers, lifeline, log)   # namespaces made (netns.py)
    await net.apply_grudge({"n1": {"n2"}})                       # cuts n2 -> n1
    await net.set_link_faults([("n1", "n2")], LinkFaults(drop=0.25))

The same verbs and the same recorded grudge as the link proxies (network.py), acting on packets:
- A cut link src -> dst drops every packet of the connections src opens to dst (conntrack
  flows, both directions of them), at both ends; connections dst opens to src are untouched.
  For a system that sends each message on its own outbound connection, as the bundled Raft does,
  that is exactly "src's messages do not reach dst", as in proxy mode. Established connections
  stall (their packets vanish, TCP retransmits them after the heal) rather than close: every
  cut here is what proxy mode calls a stall (`always_stalls`). Conntrack sees every flow from
  its first packet because the table exists before any node starts.
- Loss (the net fault `drop`) drops each IP packet from src to dst with its probability, in
  src's namespace. TCP retransmits, so loss shows as delay and stalls. nftables cannot delay,
  duplicate or reorder packets: those net faults are proxy-mode only.
Pure functions build the ruleset and each namespace's update; `NftNetwork` runs `nft -f -` in the
namespaces whose rules change, all at once, one transaction each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import psutil

from splitbrain.cluster.faults import LinkFaults
from splitbrain.cluster.lifeline import Lifeline
from splitbrain.cluster.netns import Namespaces, ns_name, tool
from splitbrain.cluster.network import Grudge, Link, grudge_links

LOSS_SCALE = 1000  # probabilities in thousandths: numgen random mod 1000 < p


def table(rid: str) -> str:
    return f"splitbrain_{rid}"


def ruleset(rid: str) -> str:
    """The table every node namespace starts with: nothing cut, nothing lost."""
    match = "ct original ip saddr . ct original ip daddr @cut drop"
    return (
        f"table inet {table(rid)} {{\n"
        "  set cut { type ipv4_addr . ipv4_addr; }\n"
        "  chain loss { }\n"
        f"  chain input {{ type filter hook input priority 0; policy accept; {match}; }}\n"
        f"  chain output {{ type filter hook output priority 0; policy accept; {match}; "
        "jump loss; }\n"
        "}\n"
    )


def update(rid: str, node: str, cut: Iterable[Link], loss: Mapping[Link, float],
           address: Mapping[str, str]) -> str:  # fmt: skip
    """The nft script that sets `node`'s namespace to this cut set and loss (its own links)."""
    t = table(rid)
    pairs = sorted(f"{address[s]} . {address[d]}" for s, d in cut if node in (s, d))
    lines = [f"flush set inet {t} cut"]
    if pairs:
        lines.append(f"add element inet {t} cut {{ {', '.join(pairs)} }}")
    lines.append(f"flush chain inet {t} loss")
    for (src, dst), p in sorted(loss.items()):
        threshold = round(p * LOSS_SCALE)
        if src == node and threshold > 0:
            chance = f"numgen random mod {LOSS_SCALE} < {threshold} " if p < 1 else ""
            lines.append(f"add rule inet {t} loss ip daddr {address[dst]} {chance}drop")
    return "\n".join(lines) + "\n"


class NftNetwork:
    """The driver's handle on a netns run's network (the interface of network.Network)."""

    def __init__(self, namespaces: Namespaces, peers: Mapping[str, tuple[str, int]]) -> None:
        self.namespaces = namespaces
        self.nodes = namespaces.nodes
        self.peers = dict(peers)  # node -> its own peer address
        self.cut: frozenset[Link] = frozenset()
        self.faults: dict[Link, LinkFaults] = {}
        self._applied: dict[str, str] = {}  # node -> the last update its namespace took
        self._lock = asyncio.Lock()

    @classmethod
    async def start(cls, nodes: Sequence[str], peer_port: int, lifeline: Lifeline,
                    log: Path | None = None) -> NftNetwork:  # fmt: skip
        namespaces = await Namespaces.create(nodes, lifeline, log)
        try:
            peers = {n: (namespaces.address(n), peer_port) for n in nodes}
            net = cls(namespaces, peers)
            nft = tool("nft") or "nft"
            await asyncio.gather(*(namespaces.command([nft, "-f", "-"], stdin=ruleset(
                namespaces.rid), netns=ns_name(namespaces.rid, n)) for n in nodes))
        except BaseException:
            namespaces.close()
            raise
        return net

    @property
    def proc(self) -> psutil.Popen | None:
        """The keeper process (Cluster.pids() lists it)."""
        return self.namespaces.keeper

    def address(self, src: str, dst: str) -> tuple[str, int]:
        """Where node src must send its messages for dst: dst's own address."""
        return self.peers[dst]

    always_stalls = True

    async def apply_grudge(self, grudge: Grudge, stall: bool = True) -> frozenset[Link]:
        links = grudge_links(grudge, self.nodes)
        await self._apply(links, self.faults)
        self.cut = links
        return links

    async def heal(self) -> None:
        await self._apply(frozenset(), self.faults)
        self.cut = frozenset()

    async def set_link_faults(self, links: Iterable[Link], faults: LinkFaults) -> None:
        links = sorted(set(links))
        for s, d in links:
            if s not in self.peers or d not in self.peers or s == d:
                raise ValueError(f"no link {s}->{d}")
        unsupported = sorted(k for k in faults.to_json() if k != "drop")
        if unsupported:
            raise ValueError(f"network mode netns can only drop packets, not {unsupported[0]}")
        after = {**self.faults, **dict.fromkeys(links, faults)}
        await self._apply(self.cut, after)
        self.faults = after

    async def clear_link_faults(self) -> None:
        await self._apply(self.cut, {})
        self.faults = {}

    async def stats(self) -> dict[Link, dict[str, int]]:
        return {}  # nftables counts no messages; the proxies' per-link stats have no equivalent

    async def _apply(self, cut: frozenset[Link], faults: Mapping[Link, LinkFaults]) -> None:
        ns = self.namespaces
        address = {n: self.peers[n][0] for n in self.nodes}
        loss = {link: f.drop for link, f in faults.items()}
        async with self._lock:
            scripts = {n: update(ns.rid, n, cut, loss, address) for n in self.nodes}
            changed = [n for n in self.nodes if self._applied.get(n) != scripts[n]]
            nft = tool("nft") or "nft"
            results = await asyncio.gather(
                *(ns.command([nft, "-f", "-"], stdin=scripts[n], netns=ns_name(ns.rid, n))
                  for n in changed),
                return_exceptions=True,
            )  # fmt: skip
            for n, r in zip(changed, results, strict=True):
                if isinstance(r, BaseException):
                    self._applied.pop(n, None)  # unknown state: rewrite it next time
                else:
                    self._applied[n] = scripts[n]
            for r in results:
                if isinstance(r, BaseException):
                    raise r

    def close(self) -> None:
        self.namespaces.close()

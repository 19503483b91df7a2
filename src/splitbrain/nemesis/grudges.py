"""Grudges: pure descriptions of network partitions.

A grudge maps each node to the set of nodes whose traffic it drops (Jepsen's word). Cutting the
links of a grudge is network.py's job; these functions only compute. They take nodes in the
order given — the caller shuffles with its seeded rng — so the same input gives the same grudge.
Every node of `nodes` appears as a key (with an empty set if it drops nothing), which makes a
recorded grudge self-describing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from splitbrain.raft.quorum import majority

Grudge = dict[str, frozenset[str]]


def bisect(nodes: Sequence[str]) -> tuple[list[str], list[str]]:
    """Two halves; the first is the smaller when the count is odd ([n1 n2] [n3 n4 n5])."""
    half = len(nodes) // 2
    return list(nodes[:half]), list(nodes[half:])


def complete_grudge(components: Iterable[Iterable[str]]) -> Grudge:
    """Each node drops traffic from every node outside its own component."""
    comps = [frozenset(c) for c in components]
    everyone = frozenset().union(*comps)
    return {n: everyone - comp for comp in comps for n in sorted(comp)}


def isolate(nodes: Sequence[str], node: str) -> Grudge:
    """`node` alone on one side, everyone else together on the other."""
    if node not in nodes:
        raise ValueError(f"cannot isolate {node!r}: not one of {list(nodes)}")
    return complete_grudge([[node], [n for n in nodes if n != node]])


def minority_with(nodes: Sequence[str], node: str) -> Grudge:
    """`node` and the nodes after it (in `nodes`, cyclically) in the largest minority, cut off
    from the rest: a leader there keeps its followers but can commit nothing."""
    if node not in nodes:
        raise ValueError(f"cannot cut off {node!r}: not one of {list(nodes)}")
    i = list(nodes).index(node)
    size = max(1, len(nodes) - majority(len(nodes)))
    group = [nodes[(i + k) % len(nodes)] for k in range(size)]
    return complete_grudge([group, [n for n in nodes if n not in group]])


def majorities_ring(nodes: Sequence[str]) -> Grudge:
    """Every node sees a majority, but no two nodes see the same one.

    Along the ring given by `nodes`, each window of majority-many consecutive nodes is the only
    company of the node in its middle. With an even majority (e.g. 3 nodes) some links are cut
    one way only: that is what makes the majorities differ.
    """
    count, m = len(nodes), majority(len(nodes))
    grudge: Grudge = {}
    for i in range(count):
        window = [nodes[(i + k) % count] for k in range(m)]
        grudge[window[m // 2]] = frozenset(nodes) - set(window)
    return {n: grudge[n] for n in nodes}


def bridge(nodes: Sequence[str]) -> Grudge:
    """Two halves that cannot talk, and one node in the middle that talks to both."""
    if len(nodes) < 3:
        raise ValueError("a bridge needs at least 3 nodes")
    mid = len(nodes) // 2
    left, middle, right = nodes[:mid], nodes[mid], nodes[mid + 1 :]
    grudge = {n: frozenset(right) for n in left}
    grudge.update({n: frozenset(left) for n in right})
    grudge[middle] = frozenset()
    return grudge


def one_way(nodes: Sequence[str], senders: Iterable[str]) -> Grudge:
    """Traffic from `senders` to everyone else is dropped; traffic towards `senders` passes."""
    senders = frozenset(senders)
    unknown = senders - set(nodes)
    if unknown:
        raise ValueError(f"unknown senders {sorted(unknown)}")
    return {n: frozenset() if n in senders else senders for n in nodes}


def to_json(grudge: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """A grudge as history.jsonl records it: nodes in natural order (n2 before n10), each
    with the sorted list of nodes it drops."""
    return {n: sorted(grudge[n], key=_natural) for n in sorted(grudge, key=_natural)}


def _natural(node: str) -> tuple[int, str]:
    return (len(node), node)

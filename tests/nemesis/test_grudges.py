"""Grudges are pure: who drops whose traffic, for each partition shape."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from splitbrain.nemesis.grudges import (
    bisect,
    bridge,
    complete_grudge,
    isolate,
    majorities_ring,
    minority_with,
    one_way,
    to_json,
)
from splitbrain.raft.quorum import majority

node_lists = st.integers(min_value=1, max_value=9).map(lambda n: [f"n{i}" for i in range(1, n + 1)])


def sees(grudge: dict[str, frozenset[str]], node: str) -> set[str]:
    return set(grudge) - grudge[node]


def test_bisect_puts_the_extra_node_in_the_second_half() -> None:
    assert bisect(["a", "b", "c", "d", "e"]) == (["a", "b"], ["c", "d", "e"])
    assert bisect(["a"]) == ([], ["a"])


def test_complete_grudge_cuts_exactly_between_components() -> None:
    g = complete_grudge([["a", "b"], ["c"], ["d", "e"]])
    assert g == {
        "a": {"c", "d", "e"}, "b": {"c", "d", "e"}, "c": {"a", "b", "d", "e"},
        "d": {"a", "b", "c"}, "e": {"a", "b", "c"},
    }  # fmt: skip


def test_isolate_cuts_one_node_from_all_others() -> None:
    g = isolate(["a", "b", "c"], "b")
    assert g == {"a": {"b"}, "b": {"a", "c"}, "c": {"b"}}
    with pytest.raises(ValueError, match="cannot isolate 'z'"):
        isolate(["a"], "z")


@given(node_lists)
def test_majorities_ring_gives_each_node_its_own_majority(nodes: list[str]) -> None:
    g = majorities_ring(nodes)
    assert list(g) == nodes
    for n in nodes:
        assert n in sees(g, n) and len(sees(g, n)) == majority(len(nodes))
    if len(nodes) >= 3:
        views = [frozenset(sees(g, n)) for n in nodes]
        assert len(set(views)) == len(nodes)  # no two nodes see the same majority


def test_majorities_ring_of_five_is_the_classic_ring() -> None:
    g = majorities_ring(["a", "b", "c", "d", "e"])
    assert sees(g, "c") == {"b", "c", "d"} and sees(g, "a") == {"e", "a", "b"}


@given(node_lists.filter(lambda ns: len(ns) >= 3))
def test_bridge_keeps_one_node_talking_to_both_disconnected_halves(nodes: list[str]) -> None:
    g = bridge(nodes)
    middle = [n for n in nodes if not g[n]]
    assert len(middle) == 1
    left = [n for n in nodes if n not in middle and g[n]]
    for a in left:
        assert all(a in g[b] for b in g[a])  # symmetric: two halves that cannot talk
    assert all(middle[0] not in g[n] for n in nodes)


def test_bridge_needs_three_nodes() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        bridge(["a", "b"])


def test_one_way_drops_only_the_senders_traffic() -> None:
    g = one_way(["a", "b", "c"], ["a"])
    assert g == {"a": frozenset(), "b": {"a"}, "c": {"a"}}
    with pytest.raises(ValueError, match="unknown senders"):
        one_way(["a"], ["q"])


def test_to_json_sorts_for_a_stable_record() -> None:
    recorded = to_json({"n10": frozenset({"n2"}), "n2": frozenset({"n10", "n1"})})
    assert list(recorded.items()) == [("n2", ["n1", "n10"]), ("n10", ["n2"])]


def test_minority_with_cuts_a_node_off_with_the_followers_after_it() -> None:
    g = minority_with(["n1", "n2", "n3", "n4", "n5"], "n5")
    assert sees(g, "n5") == {"n5", "n1"} and sees(g, "n2") == {"n2", "n3", "n4"}
    assert minority_with(["a", "b", "c"], "b") == isolate(["a", "b", "c"], "b")
    with pytest.raises(ValueError, match="cannot cut off 'x'"):
        minority_with(["a"], "x")


@given(node_lists, st.data())
def test_minority_with_leaves_a_majority_without_the_node(nodes: list[str], data) -> None:
    node = data.draw(st.sampled_from(nodes))
    g = minority_with(nodes, node)
    mine = sees(g, node)
    assert node in mine and len(mine) == max(1, len(nodes) - majority(len(nodes)))
    if len(nodes) > 1:
        others = set(nodes) - mine
        assert all(sees(g, n) == others for n in others)

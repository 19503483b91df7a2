"""Which directed links a grudge cuts."""

from __future__ import annotations

import pytest

from splitbrain.cluster.network import grudge_links


def test_grudge_links_are_the_directed_links_it_cuts() -> None:
    nodes = ["n1", "n2", "n3"]
    assert grudge_links({"n1": ["n2", "n1"], "n2": [], "n3": ["n1"]}, nodes) == {
        ("n2", "n1"),
        ("n1", "n3"),
    }
    with pytest.raises(ValueError, match="unknown node 'n9'"):
        grudge_links({"n9": []}, nodes)

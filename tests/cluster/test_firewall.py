"""The nftables rules of netns mode, as text: each namespace gets its own pairs, and loss only
on the links it sends on. (tests/cluster/test_netns.py applies them for real, as root.)"""

from __future__ import annotations

from splitbrain.cluster.firewall import ruleset, update

ADDRESS = {"n1": "10.77.0.1", "n2": "10.77.0.2", "n3": "10.77.0.3"}


def test_the_table_matches_conntrack_flows_in_both_directions():
    text = ruleset("abc123")
    assert text.startswith("table inet splitbrain_abc123 {")
    match = "ct original ip saddr . ct original ip daddr @cut drop"
    assert text.count(match) == 2  # input and output: both directions of a cut flow
    assert "jump loss" in text


def test_an_update_sets_the_pairs_of_one_node_and_its_own_loss():
    cut = {("n1", "n2"), ("n3", "n2"), ("n1", "n3")}
    loss = {("n2", "n1"): 0.25, ("n1", "n2"): 1.0, ("n2", "n3"): 0.0}
    assert update("abc123", "n2", cut, loss, ADDRESS) == (
        "flush set inet splitbrain_abc123 cut\n"
        "add element inet splitbrain_abc123 cut { 10.77.0.1 . 10.77.0.2, 10.77.0.3 . 10.77.0.2 }\n"
        "flush chain inet splitbrain_abc123 loss\n"
        "add rule inet splitbrain_abc123 loss ip daddr 10.77.0.1 numgen random mod 1000 < 250 "
        "drop\n")
    assert update("abc123", "n1", set(), {("n1", "n2"): 1.0}, ADDRESS).endswith(
        "add rule inet splitbrain_abc123 loss ip daddr 10.77.0.2 drop\n")  # always: no numgen
    assert update("abc123", "n3", set(), {}, ADDRESS) == (
        "flush set inet splitbrain_abc123 cut\nflush chain inet splitbrain_abc123 loss\n")

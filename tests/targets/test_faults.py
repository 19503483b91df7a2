"""The nemesis is given only faults the target and network mode can take; asking for one they
cannot is an error naming what is missing; `all` and unnarrowed faults are narrowed, with notes."""

from __future__ import annotations

import dataclasses

import pytest

from splitbrain.nemesis.schedule import FAULTS, NET_FAULTS, PARTITIONS, parse_faults
from splitbrain.targets.faults import FaultError, fit
from splitbrain.targets.registry import load_target
from tests.targets.test_tomlfile import KVD

RAFT = load_target("raft")
ETCD = load_target("etcd")
KV = load_target(str(KVD))  # leader lookup, no events, unframed peers


def test_the_bundled_raft_takes_everything_in_proxy_mode():
    assert fit(FAULTS, RAFT, "proxy", everything=True) == (FAULTS, [])


def test_netns_can_only_drop_packets():
    faults, notes = fit(("net",), RAFT, "netns", everything=False)
    assert faults == ("net:drop",)
    assert notes == ["net:drop only: network mode netns can only do net:drop "
                     f"(not {', '.join(sorted(set(NET_FAULTS) - {'drop'}))})"]
    with pytest.raises(FaultError, match="net:delay: network mode netns can only do net:drop"):
        fit(("net:delay",), RAFT, "netns", everything=False)


def test_etcd_all_leaves_out_churn_crash_and_clock_and_says_why():
    faults, notes = fit(FAULTS, ETCD, "netns", everything=True)
    assert faults == ("partition", "kill", "pause:all+leader+majority+minority+one", "restart",
                      "net:drop", "power-loss", "corrupt", "disk-full")  # leader pauses are
    # timed by node events
    assert "no churn: target etcd has no node events (events.jsonl)" in notes
    assert "no crash: target etcd has no crash points" in notes
    assert any(n.startswith("no clock: target etcd has no clocks read through libc") for n in notes)


@pytest.mark.parametrize(("spec", "target", "network", "message"), [
    ("crash", ETCD, "netns", "crash: target etcd has no crash points"),
    ("churn", KV, "proxy", r"churn: target kvd has no node events \(events.jsonl\)"),
    ("net", KV, "proxy", "net: target kvd's peer traffic is not framed"),
    ("clock:slow", KV, "proxy", "clock: target kvd has no clocks read through libc"),
    ("power-loss", KV, "proxy", "power-loss: target kvd has no data directory holding all its "
                                "durable state"),
])
def test_a_named_fault_the_target_cannot_take_is_refused(spec, target, network, message):
    with pytest.raises(FaultError, match=message):
        fit(parse_faults(spec), target, network, everything=False)


def test_without_leader_lookup_leader_variants_are_left_out():
    nameless = dataclasses.replace(KV, leader=None)
    faults, notes = fit(("partition", "kill"), nameless, "proxy", everything=False)
    assert faults == (f"partition:{'+'.join(sorted(set(PARTITIONS) - {'isolate-leader'}))}",
                      "kill:all+majority+minority+one")
    assert all("has no leader lookup" in n for n in notes)
    with pytest.raises(FaultError, match="kill:leader: target kvd has no leader lookup"):
        fit(("kill:leader",), nameless, "proxy", everything=False)


def test_faults_aimed_at_raft_messages_and_leader_pauses_need_the_bundled_raft():
    framed = dataclasses.replace(KV, framed=True)  # frames, but not our messages; no events
    faults, notes = fit(("net", "pause"), framed, "proxy", everything=False)
    assert faults == ("net:delay+drop+duplicate+reorder", "pause:all+leader+majority+minority+one")
    assert any("target kvd has no Raft message headers" in n for n in notes)
    with pytest.raises(FaultError, match="net:term-reorder: target kvd has no Raft message"):
        fit(("net:term-reorder",), framed, "proxy", everything=False)
    assert fit(("net", "pause"), RAFT, "proxy", everything=False) == (("net", "pause"), [])

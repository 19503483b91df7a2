"""What `splitbrain run` adds to results.json when the cluster did not recover."""

from __future__ import annotations

from splitbrain.run import recovery_warnings
from splitbrain.workloads.interpreter import Tally


def test_a_recovered_run_has_no_warnings():
    assert recovery_warnings(Tally(leader_after_heal=True, final_unread=0)) == []


def test_no_leader_and_unread_keys_are_reported():
    warnings = recovery_warnings(Tally(leader_after_heal=False, final_unread=3))
    assert any("no leader" in w for w in warnings)
    assert any("3 key(s) could not be read" in w for w in warnings)

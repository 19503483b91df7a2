"""The paper's counterexamples, scripted step by step: the safe core survives them, and each
deliberately unsafe variant breaks exactly what it should, caught by SimNet's invariant checks.
This is the evidence that the invariant checks can fail. The core's flags go in Config.unsafe;
no-vote-persist, a server flag, is played by restarting a node from a hard state without its vote.

The scripts force elections with campaign() and never tick, so no timer interferes; PreVote and
CheckQuorum are off to keep each election to one round of votes.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from splitbrain.raft.messages import Message, MessageType
from splitbrain.testing.simnet import InvariantViolation, SimNet


def scripted(size: int, unsafe: tuple[str, ...] = (), max_msg_entries: int = 64) -> SimNet:
    return SimNet(
        size,
        seed=0,
        pre_vote=False,
        check_quorum=False,
        election_tick=1000,
        max_msg_entries=max_msg_entries,
        unsafe=unsafe,
    )


def elect(net: SimNet, node: str, tries: int = 3) -> None:
    """Campaign until `node` leads (a try may lose to votes already cast in that term)."""
    for _ in range(tries):
        net.campaign(node)
        if net.status(node).role == "leader":
            return
    raise AssertionError(f"{node} could not win an election")


def figure8(unsafe: tuple[str, ...]) -> tuple[SimNet, int]:
    """Raft Figure 8 on five nodes (terms shifted down by one); returns the net and the index
    of "x". With `commit-old-terms` there is no election no-op (the paper's Figure 8 Raft)."""
    net = scripted(5, unsafe, max_msg_entries=1)
    elect(net, "n1")  # term 1; the safe core's no-op is committed everywhere
    # (a) n1 replicates "x" to n2 only.
    for other in ("n3", "n4", "n5"):
        net.cut("n1", other)
    x_index, _ = net.propose("n1", b"x")
    # (b) n1 crashes; n5 wins term 2 with n3 and n4 and appends "y" at x's index, replicating
    # nothing.
    net.crash("n1")
    net.recover()
    net.filter(lambda m: m.src == "n5" and m.type == MessageType.APP)
    elect(net, "n5")
    assert net.status("n5").term == 2
    net.propose("n5", b"y")
    assert net.nodes["n5"].entries[x_index - 1].term == 2
    net.crash("n5")
    # (c) n1 restarts and wins term 3; it brings n3 up to x's index (term 1) but no further.
    net.recover()
    net.restart("n1")
    net.cut("n1", "n4")

    def holds_back_term3(m: Message) -> bool:
        # Let n3 reject the first append (it lacks "x"), then keep term 3 from it.
        if m.dst != "n3" or m.type != MessageType.APP or len(net.nodes["n3"].entries) < x_index:
            return False
        return any(e.term == 3 for e in m.entries)

    net.filter(holds_back_term3)
    elect(net, "n1")
    assert net.status("n1").term == 3
    n3_log = net.nodes["n3"].entries
    assert len(n3_log) == x_index and n3_log[-1].data == b"x"  # on n1, n2 and n3
    # (d) n1 crashes; n5 restarts and wins with n3 and n4, whose logs end in older terms, and
    # overwrites x's index with its own entry of term 2.
    net.crash("n1")
    net.recover()
    net.restart("n5")
    elect(net, "n5")
    net.tick(3)
    return net, x_index


def test_figure8_an_entry_of_an_older_term_is_not_committed_by_counting() -> None:
    """Reference: §5.4.2, Figure 8. "x" is on a majority in (c) but of an older term, so the
    leader of term 3 does not commit it; when n5 replaces it in (d) nothing committed is lost."""
    net, x_index = figure8(unsafe=())
    assert net.committed[x_index].term == 2  # n5's entry of term 2, never "x"
    assert all(b"x" not in net.commands(n) for n in net.ids if net.nodes[n].alive)


def test_figure8_commit_old_terms_overwrites_a_committed_entry() -> None:
    """Reference: §5.4.2, Figure 8, with `commit-old-terms`: n1 commits "x" by counting
    replicas in (c), then n5 overwrites it in (d) — two entries applied at one index."""
    with pytest.raises(InvariantViolation, match=r"at index 1, but b'x' of term 1"):
        figure8(unsafe=("commit-old-terms",))


def test_commit_old_terms_has_no_election_noop() -> None:
    """The Figure 8 Raft of the paper: a new leader appends nothing of its own term, so its
    log may end in an older term (which is what lets Figure 8 happen)."""
    for unsafe, expected in (((), [1]), (("commit-old-terms",), [])):
        net = scripted(3, unsafe)
        elect(net, "n1")
        assert [e.term for e in net.nodes["n1"].entries] == expected


def stale_candidate(unsafe: tuple[str, ...]) -> SimNet:
    """n3 misses two committed entries; the leader crashes; n3 asks n2 for its vote."""
    net = scripted(3, unsafe)
    elect(net, "n1")
    net.cut("n1", "n3")
    net.one(b"a", 2, retry=False)
    net.one(b"b", 2, retry=False)
    net.crash("n1")
    net.campaign("n3")
    return net


def test_a_stale_candidate_cannot_win() -> None:
    """Reference: §5.4.1. n2's log is more up to date than n3's, so n2 refuses its vote; n2
    then wins and n3 catches up with everything committed."""
    net = stale_candidate(unsafe=())
    assert net.status("n3").role == "candidate"
    elect(net, "n2")
    net.restart("n1")
    net.one(b"c", 3)
    net.tick(2)
    assert all(net.commands(n) == [b"a", b"b", b"c"] for n in net.ids)


def test_no_log_check_lets_a_stale_node_win_and_lose_entries() -> None:
    """Reference: §5.4.1, with `no-log-check`: n2 votes for the stale n3, which becomes leader
    and overwrites the committed "a" with its own no-op."""
    with pytest.raises(InvariantViolation, match="at index 2, but b'a' of term 1"):
        stale_candidate(unsafe=("no-log-check",))


def restarted_voter(forget_vote: bool) -> SimNet:
    """n3 votes for n2 in term 2 but receives none of its entries, then restarts (forgetting
    that vote with `forget_vote`, what `--unsafe no-vote-persist` does in the server); n4, cut
    off during that election, asks n3 for its vote in term 2 too."""
    net = scripted(5)
    elect(net, "n1")
    net.partition(["n1", "n2", "n3"], ["n4", "n5"])
    net.filter(lambda m: m.src == "n2" and m.dst == "n3" and m.type == MessageType.APP)
    elect(net, "n2")
    assert net.status("n2").term == 2
    net.crash("n3")
    if forget_vote:
        node = net.nodes["n3"]
        node.hard_state = replace(node.hard_state, vote=None)
    net.restart("n3")
    net.recover()
    net.partition(["n1", "n2"], ["n3", "n4", "n5"])
    net.campaign("n4")
    return net


def test_a_restarted_voter_remembers_its_vote() -> None:
    """Reference: §5.2, Figure 2 (votedFor is persistent). n3 already voted in term 2, so n4
    gets only n5's vote there."""
    net = restarted_voter(forget_vote=False)
    assert net.status("n4").role == "candidate"
    assert net.status("n4").term == 2


def test_a_forgotten_vote_elects_two_leaders_in_one_term() -> None:
    """With the vote forgotten on restart, n3 votes twice in term 2 and n4 leads it as well as
    n2. The whole interleaving — a voter restarting after its vote but before the leader's first
    append reaches it — is why a random bounded run rarely shows this bug."""
    with pytest.raises(InvariantViolation, match="two leaders in term 2: n2, n4"):
        restarted_voter(forget_vote=True)

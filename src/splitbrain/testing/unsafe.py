"""How to provoke each deliberately unsafe variant of the bundled Raft in a `splitbrain run`,
and each unsafe configuration of a target (another target's, or the bundled Raft's lease
reads under clock faults).

Shared by the end-to-end tests (which require every one to be caught) and bench/unsafe.py
(which measures how often and how fast, with GENERIC for every variant or with these). Each
entry: the `splitbrain run` arguments that make the bug likely, after `--nodes 5 --unsafe
VARIANT` for PROVOCATIONS and after `--nodes 5` for CONFIGURATIONS (the last --time-limit given
wins), and the checker that must report it.
"""

from __future__ import annotations

from dataclasses import dataclass

# One configuration for every variant, and for the correct Raft: what a user runs nightly.
GENERIC = ("--nemesis", "all", "--time-limit", "60")


@dataclass(frozen=True, slots=True)
class Provocation:
    args: tuple[str, ...]
    checker: str  # "linearizable" or "log-agreement"
    why: str


PROVOCATIONS: dict[str, Provocation] = {
    # The generic configuration catches these two within seconds (bench/unsafe.py); the e2e
    # test runs what provokes them from the first fault on, as a 15 s run of `all` may not
    # deal a restart in its one epoch.
    "stale-reads": Provocation(
        ("--nemesis", "partition,pause", "--nemesis-interval", "1", "--time-limit", "10"),
        "linearizable",
        "followers lag the leader by milliseconds, so a local read is stale within a second",
    ),
    "no-vote-persist": Provocation(
        ("--nemesis", "restart", "--nemesis-interval", "1", "--time-limit", "10"),
        "log-agreement",
        "every node votes in each election, and the first restart (kill, restart or crash) "
        "starts without the vote it recorded in its current term: lost-vote",
    ),
    # The generic configuration catches these two in most 60 s runs (bench/unsafe.py); the e2e
    # test runs the faults that provoke them, in half the time.
    "commit-old-terms": Provocation(
        ("--nemesis", "churn", "--nemesis-interval", "1", "--time-limit", "30"),
        "log-agreement",
        "Figure 8 needs leaders that come and go before entries of their own term spread: "
        "churn cuts each new leader off 10-20 ms after its election, after it committed by "
        "counting what an older leader left, before clients reach it",
    ),
    "no-log-check": Provocation(
        ("--nemesis", "partition,kill", "--nemesis-interval", "0.5", "--time-limit", "30"),
        "log-agreement",
        "a node left behind by a partition or a kill wins an election and overwrites "
        "committed entries",
    ),
    # Only a power loss shows it: a kill -9 keeps the page cache, so what was acknowledged
    # before its fsync survives (bench/unsafe.py measures both).
    "ack-before-fsync": Provocation(
        ("--nemesis", "power-loss", "--nemesis-interval", "1", "--time-limit", "20"),
        "log-agreement",
        "acknowledgements, votes and the leader's own count leave up to a second before the "
        "fsync; a power loss of a majority or all nodes forgets them: terms and votes go back, "
        "committed entries are replaced",
    ),
}


CONFIGURATIONS: dict[str, Provocation] = {
    "raft-lease-clocks": Provocation(
        ("--node-arg=--read-mode=lease", "--nemesis", "clock:leader+slow,partition:isolate-leader",
         "--nemesis-interval", "3", "--op-timeout", "0.3", "--time-limit", "30"),
        "linearizable",
        "a leader whose clock runs slow keeps its lease after a partition cut it off and the "
        "others elected a successor (a lease assumes clocks run at one rate); clients that gave "
        "up on it after 0.3 s write through the successor and still read from it",
    ),
    "etcd-serializable-reads": Provocation(
        ("--target", "etcd", "--target-arg", "reads=serializable", "--nemesis", "partition",
         "--nemesis-interval", "1.5", "--time-limit", "12"),
        "linearizable",
        "a member cut off from the leader keeps answering serializable reads from its own state, "
        "which the majority side has overwritten",
    ),
}

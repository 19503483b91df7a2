"""How to provoke each deliberately unsafe variant of the bundled Raft in a `splitbrain run`,
and each unsafe configuration of another target.

Shared by the end-to-end tests (which require every one to be caught) and bench/unsafe.py
(which measures how often and how fast). Each entry: the `splitbrain run` arguments that make
the bug likely, after `--nodes 5 --unsafe VARIANT` for PROVOCATIONS and after `--nodes 5` for
CONFIGURATIONS (the last --time-limit given wins), and the checker that must report it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Provocation:
    args: tuple[str, ...]
    checker: str  # "linearizable" or "log-agreement"
    why: str


PROVOCATIONS: dict[str, Provocation] = {
    "stale-reads": Provocation(
        ("--nemesis", "partition", "--nemesis-interval", "1.5", "--time-limit", "20"),
        "linearizable",
        "followers lag the leader by milliseconds, so a local read is stale within a second",
    ),
    "commit-old-terms": Provocation(
        ("--nemesis", "churn", "--nemesis-interval", "1", "--time-limit", "30"),
        "log-agreement",
        "Figure 8 needs leaders that come and go before entries of their own term spread: "
        "churn isolates each new leader 10-20 ms after its election, after it committed by "
        "counting what an older leader left, before clients reach it",
    ),
    "no-vote-persist": Provocation(
        ("--nemesis", "churn,crash:after-vote+majority+all", "--nemesis-interval", "0.3",
         "--time-limit", "30"),
        "log-agreement",
        "a voter must die right after voting (crash:after-vote) and, restarted without its "
        "vote, vote again in the same term for a node that never heard of that election; "
        "churn keeps elections coming",
    ),
    "no-log-check": Provocation(
        ("--nemesis", "partition,kill", "--nemesis-interval", "0.5", "--time-limit", "30"),
        "log-agreement",
        "a node left behind by a partition or a kill wins an election and overwrites "
        "committed entries",
    ),
}


CONFIGURATIONS: dict[str, Provocation] = {
    "etcd-serializable-reads": Provocation(
        ("--target", "etcd", "--target-arg", "reads=serializable", "--nemesis", "partition",
         "--nemesis-interval", "1.5", "--time-limit", "12"),
        "linearizable",
        "a member cut off from the leader keeps answering serializable reads from its own state, "
        "which the majority side has overwritten",
    ),
}

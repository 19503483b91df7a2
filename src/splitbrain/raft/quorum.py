"""Majority arithmetic for a fixed set of voters (Raft §5.2, §5.3).

Pure functions over plain numbers, so the leader's commit rule and the election count read as
one line each.
"""

from __future__ import annotations

from collections.abc import Iterable


def majority(voters: int) -> int:
    """How many voters form a quorum."""
    return voters // 2 + 1


def committed_index(matches: Iterable[int]) -> int:
    """The largest index that a majority of voters has persisted (matches include the leader)."""
    ordered = sorted(matches, reverse=True)
    return ordered[majority(len(ordered)) - 1]

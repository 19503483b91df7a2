"""What a leader knows about one follower's log (Raft Figure 2: nextIndex, matchIndex).

A follower is either *probing* — the leader does not know where their logs agree, so it sends
one AppendEntries at a time and waits for the answer (or the next heartbeat response) — or
*replicating* — the logs agree up to `match`, so the leader streams entries and advances `next`
optimistically (pipelining). A rejection drops it back to probing. A follower that needs an
entry the leader compacted is sent the snapshot instead (§7), one chunk at a time: each chunk
waits for its answer (or the next heartbeat response) like a probe; `snapshot` names the
snapshot being sent and `snapshot_offset` the next byte the follower wants.
"""

from __future__ import annotations


class Progress:
    __slots__ = ("match", "next", "probe_sent", "recent_active", "replicating", "snapshot",
                 "snapshot_offset")

    def __init__(self, next_index: int) -> None:
        self.match = 0
        self.next = next_index
        self.replicating = False
        self.probe_sent = False  # probing and waiting for an answer: send nothing more
        self.recent_active = False  # heard from since the last CheckQuorum round
        self.snapshot = 0  # the index of the snapshot being sent; 0: none
        self.snapshot_offset = 0

    @property
    def paused(self) -> bool:
        return not self.replicating and self.probe_sent

    def sent(self, last_sent: int | None) -> None:
        """Record that an AppendEntries ending at `last_sent` (None: no entries) went out."""
        if self.replicating:
            if last_sent is not None:
                self.next = last_sent + 1
        else:
            self.probe_sent = True

    def maybe_update(self, index: int) -> bool:
        """The follower's log agrees with ours up to `index`; False if that is old news."""
        if index <= self.match:
            return False
        self.match = index
        self.next = max(self.next, index + 1)
        self.probe_sent = False
        self.snapshot = 0
        return True

    def become_replicate(self) -> None:
        self.replicating = True
        self.next = self.match + 1

    def maybe_decrease(self, rejected: int, hint: int) -> bool:
        """The follower rejected an append with prevLogIndex `rejected`; the leader's log agrees
        with it at most up to `hint`. Returns False for a stale rejection."""
        if self.replicating:
            if rejected <= self.match:
                return False
            self.replicating = False
            self.next = self.match + 1
        else:
            if self.next - 1 != rejected:
                return False
            self.next = max(min(rejected, hint + 1), self.match + 1)
        self.probe_sent = False
        return True

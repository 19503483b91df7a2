"""Crash points of the bundled Raft node: named instants where an armed node SIGKILLs itself.

Like etcd's gofail failpoints: the nemesis arms one point on a running node (the client request
`{"f": "crash-point", "value": NAME | null}`), and the node kills itself with SIGKILL the next
time its Ready loop reaches that point, after logging it and writing a `crash` event. A random
kill -9 almost never lands at the instants that matter for persistence bugs; these do. Each
one is an instant of the Ready order (persist -> send -> apply -> reply) where what is durable,
what was sent and what was applied differ.
"""

from __future__ import annotations

POINTS: dict[str, str] = {
    "after-vote": "a Ready granting a vote was persisted and the vote response written to its link",
    "after-append": "new entries were saved (fsynced); the append responses were not yet sent",
    "after-apply": "committed entries were applied and their events flushed; no client replied",
    "before-save": "a Ready with something to write sent the messages that need no fsync; "
                   "nothing of it was written yet",
    "after-term": "a new term or vote was saved (fsynced); none of that Ready's messages were sent",
    "torn-write": "half the bytes of a batch were written to the log, not synced (a torn write, "
                  "as a power loss leaves one); nothing that waits for them was sent",
    "mid-apply": "the first half of a Ready's committed entries (two or more) were applied and "
                 "their events flushed, the rest not; no client replied",
    "mid-snapshot": "a snapshot, taken or installed from the leader, was written to its file and "
                    "synced; the log was not yet compacted to start after it",
}


def validate(point: object) -> str | None:
    """`point` if it names a crash point (None disarms); ValueError otherwise."""
    if point is None:
        return None
    if isinstance(point, str) and point in POINTS:
        return point
    raise ValueError(f"unknown crash point {point!r} (known: {', '.join(POINTS)})")

"""What a node has made durable, and the invariants a real node checks about it on its hot path.

Raft's persistence rule (Figure 2: persistent state is "updated on stable storage before
responding to RPCs") is a promise some messages make about the sender's disk:
- an append response that is no rejection says the log holds entries up to its `index`;
- a granted vote says the vote is recorded, so that a restart cannot vote again in its term.
One Ready may answer several RPCs: a response of an older term than the durable one was true
when its RPC was handled (a newer leader may since have replaced entries, or the node moved on
to a newer term, which makes the old vote unrepeatable) and is not held to what is durable now.
`Durability` follows the durable end of the log and the durable (term, vote) as the server saves
them, and `broken_promise(msg)` names a message that promises more; `commit(c)` checks that a
node's commit index never goes backwards within a life. Each finding is a dict for an
`invariant` event (events.py: `rule` plus the numbers that show it). The checks cost a set
lookup per message and a comparison per hard state, so they run always.

A committed entry may be applied before this node's own fsync of it ends (it is durable on a
quorum: server.py applies while it syncs), so "applied implies durable here" is no invariant of
this server; the acknowledgement is where the promise is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from splitbrain.raft.messages import Entry, HardState, Message, MessageType

PROMISES = frozenset({MessageType.APP_RESP, MessageType.VOTE_RESP})  # messages that may promise
# The rules of `invariant` events; server.py adds "overwrite-committed" (the core refused to let
# a leader replace an entry it knew committed: rawnode.LogCorruption).
RULES = ("ack-before-durable", "vote-before-durable", "commit-regress", "overwrite-committed")


class Durability:
    def __init__(self, hard_state: HardState, last_index: int) -> None:
        self.last = last_index  # entries up to here are durable (and not being replaced)
        self.term_vote = (hard_state.term, hard_state.vote)  # durable
        self.commit = hard_state.commit  # the highest commit index seen in this life

    def writing(self, entries: Sequence[Entry]) -> None:
        """A Ready will write `entries`: those it replaces (a truncated suffix) are no longer
        what the log durably holds at their index."""
        if entries and entries[0].index <= self.last:
            self.last = entries[0].index - 1

    def saved(self, hard_state: HardState | None, entries: Sequence[Entry]) -> None:
        """The server's save of a Ready returned (written, and fsynced unless disabled)."""
        if entries:
            self.last = entries[-1].index
        if hard_state is not None:
            self.term_vote = (hard_state.term, hard_state.vote)

    def snapshotted(self, index: int) -> None:
        """A durable snapshot holds every entry up to `index`."""
        self.last = max(self.last, index)

    def broken_promise(self, msg: Message) -> dict[str, Any] | None:
        """The finding if sending `msg` now would promise what is not durable (callers test
        `msg.type in PROMISES` first: that is the whole cost for other messages)."""
        if msg.reject or msg.term < self.term_vote[0]:
            return None
        if msg.type is MessageType.APP_RESP and msg.index > self.last:
            return {"rule": "ack-before-durable", "to": msg.dst, "term": msg.term,
                    "index": msg.index, "durable": self.last}
        if msg.type is MessageType.VOTE_RESP and self.term_vote != (msg.term, msg.dst):
            term, vote = self.term_vote
            return {"rule": "vote-before-durable", "to": msg.dst, "term": msg.term,
                    "durable_term": term, "durable_vote": vote}
        return None

    def commit_to(self, commit: int) -> dict[str, Any] | None:
        """A hard state names `commit`: the finding if it went backwards."""
        if commit < self.commit:
            return {"rule": "commit-regress", "commit": commit, "before": self.commit}
        self.commit = commit
        return None

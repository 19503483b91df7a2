"""The public, single-threaded API of the Raft core: tick/step/propose/read_index/ready/advance.

The runtime drives it in one loop, one Ready at a time:

    rd = node.ready()
    persist rd.hard_state and rd.entries (fsync)   # BEFORE sending: messages may promise them
    send rd.messages
    apply rd.committed_entries in order
    serve rd.read_states once applied >= index
    node.advance(rd)

`rd.entries` may start at or below an index persisted earlier: a follower's log was truncated
at a conflict, and the storage must drop every stored entry from that index on (Raft §5.3).
`rd.snapshot` (a snapshot installed from the leader) is persisted before the entries and
restores the state machine before the committed entries are applied. Messages to self never
appear. A restarted node is built from the persisted snapshot (if any), hard state and entries
after it; `applied` starts at the snapshot's index (0 without), so committed entries are
handed out again from the one after it. `compact(index, data)` tells the core the runtime made
a durable snapshot at applied `index`: the log forgets the entries up to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from splitbrain.raft.messages import Entry, HardState, Message, Ready, Snapshot, SoftState
from splitbrain.raft.raft import LEADER, Config, LogCorruption, NotLeader, Raft

if TYPE_CHECKING:
    import random  # only the type: the caller passes in a seeded random.Random

__all__ = ["COMPACTED", "Config", "LogCorruption", "NotLeader", "RawNode", "Status"]

COMPACTED = -1  # log_term() of an index a snapshot replaced: committed, its term forgotten


@dataclass(frozen=True, slots=True)
class Status:
    id: str
    role: str  # follower, pre-candidate, candidate, leader
    term: int
    leader: str | None
    commit: int
    applied: int
    last_index: int
    snapshot: int = 0  # the index of the latest snapshot (0: none)


class RawNode:
    def __init__(
        self,
        config: Config,
        *,
        hard_state: HardState,
        entries: Sequence[Entry],
        rng: random.Random,
        snapshot: Snapshot | None = None,
    ) -> None:
        self._raft = Raft(config, hard_state, entries, rng, snapshot)
        self._hard_state = hard_state
        self._soft_state = SoftState(None, self._raft.role)

    def tick(self) -> None:
        """Advance the logical clock by one tick (election and heartbeat timers count ticks)."""
        self._raft.tick()

    def step(self, msg: Message) -> None:
        """Take a message from a peer."""
        self._raft.step(msg)

    def campaign(self) -> None:
        """Start an election now, as if the election timeout had elapsed (tests use it)."""
        self._raft.campaign()

    def propose(self, data: bytes) -> tuple[int, int]:
        """Append a command; returns its (index, term). Raises NotLeader on a non-leader.

        The entry is committed once a later Ready hands it out in committed_entries at that
        index with that term; if another entry shows up there, it was lost.
        """
        return self._raft.propose(data)

    def read_index(self, ctx: bytes) -> None:
        """Ask for a linearizable read point (§8, thesis §6.4). Raises NotLeader if not leader.

        A ReadState(index, ctx) appears in a later Ready once it is safe to read at index; it
        never appears if the leader steps down first (a Ready's soft_state shows that).
        `ctx` must be unique among pending reads.
        """
        self._raft.read_index(ctx)

    def has_ready(self) -> bool:
        raft = self._raft
        raft.flush()
        log = raft.log
        return bool(
            raft.msgs
            or raft.installed is not None
            or raft.read_states
            or log.persisting < log.last_index
            or log.applying < log.committed
            or self._soft_state.leader != raft.lead
            or self._soft_state.role != raft.role
            or self._hard_state.commit != log.committed
            or self._hard_state.term != raft.term
            or self._hard_state.vote != raft.vote
        )

    def ready(self) -> Ready:
        """Hand out the effects since the previous ready(); call advance() once they are done."""
        raft = self._raft
        raft.flush()
        soft_state = hard_state = None
        if self._soft_state.leader != raft.lead or self._soft_state.role != raft.role:
            soft_state = self._soft_state = SoftState(raft.lead, raft.role)
        current = raft.hard_state()
        if current != self._hard_state:
            hard_state = self._hard_state = current
        messages = tuple(raft.msgs)
        raft.msgs.clear()
        read_states = tuple(raft.read_states)
        raft.read_states.clear()
        installed, raft.installed = raft.installed, None
        return Ready(
            soft_state=soft_state,
            snapshot=installed,
            hard_state=hard_state,
            entries=raft.log.take_unstable(),
            messages=messages,
            committed_entries=raft.log.take_committed(),
            read_states=read_states,
        )

    def advance(self, ready: Ready) -> None:
        """The runtime persisted, sent and applied `ready`."""
        raft = self._raft
        if ready.entries:
            last = ready.entries[-1]
            raft.log.stable_to(last.index, last.term)
            if raft.role == LEADER:
                # The leader's own entries count toward a majority only once durable.
                raft.maybe_commit()
        if ready.committed_entries:
            raft.log.applied_to(ready.committed_entries[-1].index)

    def log_term(self, index: int) -> int | None:
        """The term of the entry at `index` in the log (None beyond its end): for observers."""
        log = self._raft.log
        if index < log.offset:
            return COMPACTED
        return log.term(index) if 0 <= index <= log.last_index else None

    def compact(self, index: int, data: bytes) -> None:
        """A durable snapshot of the state machine at applied `index` exists (encoded in
        `data`, sent as it is to followers that need it): forget the entries up to it."""
        self._raft.compact(index, data)

    @property
    def snapshot(self) -> Snapshot | None:
        return self._raft.snapshot

    def status(self) -> Status:
        raft = self._raft
        return Status(
            raft.id,
            raft.role,
            raft.term,
            raft.lead,
            raft.log.committed,
            raft.log.applied,
            raft.log.last_index,
            raft.log.offset,
        )

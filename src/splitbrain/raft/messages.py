"""Records exchanged by the Raft core: entries, hard state, messages, and the Ready batch.

These are plain frozen values so the core stays pure and the runtime can encode them (codec.py)
without knowing the algorithm. Node ids are strings ("n1").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class EntryType(enum.IntEnum):
    NORMAL = 0  # a client command (data = encoded kv command)
    NOOP = 1  # appended by a new leader at the start of its term (Raft §8)


@dataclass(frozen=True, slots=True)
class Entry:
    term: int
    index: int
    type: EntryType = EntryType.NORMAL
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class HardState:
    """What must survive a crash besides the log (Raft Figure 2: currentTerm, votedFor)."""

    term: int = 0
    vote: str | None = None
    commit: int = 0


class MessageType(enum.IntEnum):
    # Only messages between peers: the core has no local message types (tick and campaign are
    # calls) and no leadership transfer. The numbers are the wire's; 0, 1 and 12 are unused.
    VOTE = 2
    VOTE_RESP = 3
    PRE_VOTE = 4
    PRE_VOTE_RESP = 5
    APP = 6  # AppendEntries
    APP_RESP = 7
    HEARTBEAT = 8
    HEARTBEAT_RESP = 9
    SNAPSHOT = 10  # InstallSnapshot (§7): one chunk of the leader's snapshot
    SNAPSHOT_RESP = 11  # a chunk was taken: `offset` is the next byte the follower expects


@dataclass(frozen=True, slots=True)
class Message:
    type: MessageType
    src: str = ""
    dst: str = ""
    term: int = 0
    log_term: int = 0  # APP: prevLogTerm; VOTE: lastLogTerm
    index: int = 0  # APP: prevLogIndex; VOTE: lastLogIndex; APP_RESP: match or reject index
    entries: tuple[Entry, ...] = ()
    commit: int = 0  # leaderCommit
    reject: bool = False
    reject_hint: int = 0  # APP_RESP reject: conflict index (fast backtracking)
    reject_term: int = 0  # APP_RESP reject: conflict term (fast backtracking)
    context: bytes = b""  # HEARTBEAT(_RESP): ReadIndex round id
    # SNAPSHOT: index/log_term are the snapshot's last included index/term, `data` the chunk
    # at byte `offset`, `done` on the last chunk; SNAPSHOT_RESP: `offset` the next byte wanted
    offset: int = 0
    done: bool = False
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state machine after applying every entry up to `index` (whose term is `term`),
    encoded by the runtime (`data` is opaque to the core)."""

    index: int
    term: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ReadState:
    """A ReadIndex request that is now safe to serve once `applied >= index`."""

    index: int
    context: bytes


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state the runtime may want to log or show; not persisted."""

    leader: str | None
    role: str  # follower, pre-candidate, candidate, leader


@dataclass(frozen=True, slots=True)
class Ready:
    """Effects of the core since the last advance(), in the order the runtime must perform them:

    0. persist `snapshot` (installed from a leader: replaces the log up to its index);
    1. persist `hard_state` (if not None) and `entries` (fsync) — BEFORE sending any message;
    2. send `messages`;
    3. restore the state machine from `snapshot`, then apply `committed_entries`, in order;
    4. serve `read_states` once applied >= index;
    5. call `advance(ready)`.
    """

    soft_state: SoftState | None = None  # set when leader or role changed
    snapshot: Snapshot | None = None  # installed from a leader: persist, then restore from it
    hard_state: HardState | None = None  # persist before sending; None = unchanged
    entries: tuple[Entry, ...] = ()  # persist (fsync) BEFORE sending messages
    messages: tuple[Message, ...] = ()  # send after persisting
    committed_entries: tuple[Entry, ...] = ()  # apply in order
    read_states: tuple[ReadState, ...] = ()  # serve once applied >= index

"""The Raft algorithm (the extended paper, "In Search of an Understandable Consensus Algorithm").

Section numbers are the extended paper's; "thesis" means Ongaro's dissertation, "Consensus:
Bridging Theory and Practice", where PreVote, CheckQuorum and ReadIndex are spelled out.

A pure state machine in the style of etcd's raft: `tick()` advances a logical clock,
`step(msg)` takes a peer message, and effects pile up in `msgs`, `read_states` and the log's
cursors for the RawNode to hand out. No sockets, clocks, disk, threads or global random: the
randomized election timeout comes from the injected `random.Random`.

A role change swaps `_step` and `_tick` (follower/candidate: election timer; leader: heartbeat
timer and CheckQuorum) instead of testing the role everywhere.

Rules kept (paper sections in brackets):
- at most one vote per term, persisted before the vote is sent [§5.2, Figure 2];
- a (pre-)candidate asks again, every heartbeat, the peers that have not answered [§5.1];
- votes only for candidates whose log is at least as up to date [§5.4.1];
- PreVote: a node that cannot win does not disrupt the cluster by raising its term
  [thesis §9.6];
- CheckQuorum: a leader that has not heard from a quorum for an election timeout steps down,
  and a follower that heard from a leader within the timeout ignores votes [§6, "disruptive
  servers"; thesis §6.2, §9.6];
- a new leader appends a no-op entry [§8]; commit only entries of the current term, counting
  persisted replicas, the leader's own after it is persisted [§5.4.2, Figure 8] (the unsafe
  `commit-old-terms` drops both rules, as the Raft of Figure 8 does);
- AppendEntries consistency check with conflict term/index hints [§5.3];
- ReadIndex: served only once the leader has committed an entry of its term and a quorum has
  acknowledged a heartbeat sent after the request [§8, thesis §6.4]; a leader that steps down
  drops them.
- Lease reads (`read_mode="lease"`, etcd's LeaseBased, thesis §6.4.1): a leader that has
  committed an entry of its term serves a read at once, without a quorum round, while its lease
  lasts: from the tick a heartbeat was first sent that a quorum acknowledged, for
  `Config.lease_ticks` of the leader's ticks. It rests on CheckQuorum: no follower that
  acknowledged that heartbeat votes before election_tick of its own ticks have passed since,
  and a node that just started does not vote for its first election_tick ticks (it may have
  acknowledged one in a life it forgot). Safe while no leader's clock runs more than
  `drift_percent` slower than a follower's; without a lease the read falls back to ReadIndex.
- Snapshots [§7]: the runtime compacts the log into a snapshot of applied entries
  (`compact`); a follower that needs an entry the leader no longer has is sent the snapshot in
  chunks of at most `snapshot_chunk` bytes, each answered with the next byte wanted; the
  follower gathers them in memory (at most `MAX_SNAPSHOT` bytes), checks the whole with the
  runtime's `snapshot_check`, and installs it (keeping its entries after the snapshot if it
  holds the snapshot's last entry with its term, else discarding its log) — or answers with its
  commit index if the snapshot holds nothing it lacks. Chunks of another snapshot, leader or
  term, at an offset other than 0, ask for the start again; no chunk raises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from splitbrain.raft.log import RaftLog
from splitbrain.raft.messages import (
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ReadState,
    Snapshot,
)
from splitbrain.raft.progress import Progress
from splitbrain.raft.quorum import committed_index, majority

if TYPE_CHECKING:
    import random  # only the type: the caller passes in a seeded random.Random

FOLLOWER = "follower"
PRE_CANDIDATE = "pre-candidate"
CANDIDATE = "candidate"
LEADER = "leader"

UNSAFE_FLAGS = frozenset({"commit-old-terms", "no-log-check"})
READ_MODES = ("index", "lease")  # ReadIndex (a quorum round per read batch), or leader leases

_APP = MessageType.APP
_APP_RESP = MessageType.APP_RESP
_HEARTBEAT = MessageType.HEARTBEAT
_HEARTBEAT_RESP = MessageType.HEARTBEAT_RESP
_VOTE = MessageType.VOTE
_VOTE_RESP = MessageType.VOTE_RESP
_PRE_VOTE = MessageType.PRE_VOTE
_PRE_VOTE_RESP = MessageType.PRE_VOTE_RESP
_SNAPSHOT = MessageType.SNAPSHOT
_SNAPSHOT_RESP = MessageType.SNAPSHOT_RESP
MAX_SNAPSHOT = 256 * 1024 * 1024  # bytes of an incoming snapshot a follower gathers at most
MAX_MSG_ENTRIES = 512  # Config's defaults
SNAPSHOT_CHUNK = 512 * 1024


@dataclass(frozen=True, slots=True)
class Config:
    id: str
    peers: tuple[str, ...]  # every member's id; including `id` itself or not, both are accepted
    election_tick: int = 10  # election timeout drawn from [election_tick, 2 * election_tick)
    heartbeat_tick: int = 1  # a leader sends heartbeats every heartbeat_tick ticks
    pre_vote: bool = True
    check_quorum: bool = True
    max_msg_entries: int = MAX_MSG_ENTRIES  # entries per AppendEntries message
    # entry data bytes per AppendEntries message, always at least one entry (etcd's
    # MaxSizePerMsg): what keeps a follower that fell behind able to catch up in frames a peer
    # link accepts, however large the entries
    max_msg_bytes: int = 1024 * 1024
    read_mode: str = "index"  # one of READ_MODES
    # lease reads: the bound on clock drift (thesis §6.4.1), in percent: a leader's clock runs
    # at least (100 - drift_percent)% as fast as any follower's
    drift_percent: int = 10
    snapshot_chunk: int = SNAPSHOT_CHUNK  # snapshot bytes per SNAPSHOT message (<= codec's limit)
    # the runtime's check of a whole snapshot received from a leader (its checksum and
    # encoding): a snapshot it refuses is not installed
    snapshot_check: Callable[[int, int, bytes], bool] | None = None  # (index, term, data)
    # deliberately unsafe variants, for demonstrating that splitbrain catches real bugs:
    # "commit-old-terms" (ignore Figure 8: count replicas of any term, and no election no-op,
    # as in the paper's Figure 8), "no-log-check" (vote without §5.4.1)
    unsafe: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.heartbeat_tick < 1 or self.election_tick <= self.heartbeat_tick:
            raise ValueError(
                f"need 1 <= heartbeat_tick < election_tick, got {self.heartbeat_tick} and "
                f"{self.election_tick}"
            )
        if self.max_msg_entries < 1:
            raise ValueError(f"max_msg_entries must be >= 1, got {self.max_msg_entries}")
        if self.max_msg_bytes < 0:
            raise ValueError(f"max_msg_bytes must be >= 0, got {self.max_msg_bytes}")
        if self.read_mode not in READ_MODES:
            raise ValueError(f"read_mode must be one of {', '.join(READ_MODES)}, "
                             f"got {self.read_mode!r}")
        if self.snapshot_chunk < 1:
            raise ValueError(f"snapshot_chunk must be >= 1, got {self.snapshot_chunk}")
        if not 0 <= self.drift_percent < 100:
            raise ValueError(f"need 0 <= drift_percent < 100, got {self.drift_percent}")
        unknown = set(self.unsafe) - UNSAFE_FLAGS
        if unknown:
            raise ValueError(f"unknown unsafe flag(s) for the core: {', '.join(sorted(unknown))}")

    @property
    def lease_ticks(self) -> int:
        """The longest lease no successor can be elected within. A follower's timeout may end
        election_tick - 1 of its ticks after it acknowledged (its first tick can come at once),
        and the leader's ticks may each last 100 / (100 - drift_percent) of the follower's.
        (election_tick 15, drift 10%: 12 ticks.)"""
        election, drift = self.election_tick, self.drift_percent
        return (election - 1) * (100 - drift) // 100


class NotLeader(Exception):
    """propose/read_index on a node that is not the leader; `leader_hint` is its known leader."""

    def __init__(self, leader_hint: str | None) -> None:
        super().__init__(f"not the leader (leader: {leader_hint or 'unknown'})")
        self.leader_hint = leader_hint


class LogCorruption(Exception):
    """A committed entry would be overwritten. A defensive check: appends start above the
    commit index, so only a bug in this core could raise it."""

    def __init__(self, node: str, index: int, leader: str) -> None:
        super().__init__(f"{node}: entry {index} is committed but {leader} overwrote it")
        self.index = index  # the committed entry
        self.leader = leader  # who sent the entries that replace it


@dataclass(slots=True)
class _PendingRead:
    index: int
    acks: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Incoming:
    """A snapshot being received: whose (term, leader, index, term of index), and its bytes."""

    key: tuple[int, str, int, int]
    data: bytearray


@dataclass(slots=True)
class _Beat:
    """A heartbeat context in flight, for leases: the tick it was first sent, who answered."""

    sent: int
    acks: set[str] = field(default_factory=set)


class Raft:
    def __init__(
        self,
        config: Config,
        hard_state: HardState,
        entries: Sequence[Entry],
        rng: random.Random,
        snapshot: Snapshot | None = None,
    ) -> None:
        self.id = config.id
        self.config = config
        self.voters = tuple(sorted(set(config.peers) | {config.id}))
        self.others = tuple(p for p in self.voters if p != self.id)
        self.quorum = majority(len(self.voters))
        self.rng = rng
        self.commit_old_terms = "commit-old-terms" in config.unsafe
        self.no_log_check = "no-log-check" in config.unsafe
        self.snapshot = snapshot  # the latest snapshot, sent to followers that need it
        self.installed: Snapshot | None = None  # installed from a leader, for the next Ready
        self.incoming: _Incoming | None = None
        self.log = RaftLog(entries, hard_state.commit,
                           (snapshot.index, snapshot.term) if snapshot else (0, 0))
        self.term = hard_state.term
        self.vote = hard_state.vote
        self.lead: str | None = None
        self.role = FOLLOWER
        self.msgs: list[Message] = []
        self.read_states: list[ReadState] = []
        self.prs: dict[str, Progress] = {}
        self.votes: dict[str, bool] = {}
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_timeout = config.election_tick
        # ReadIndex requests: waiting for a commit in this term, then for a quorum round
        self.reads_waiting_commit: list[bytes] = []
        self.reads: dict[bytes, _PendingRead] = {}  # in request order
        self.need_bcast = False  # coalesce appends of many proposals into one message per peer
        self.need_read_beat = False
        self.lease = config.read_mode == "lease"
        self.ticks = 0  # ticks of this life: the clock leases are measured with
        # A node that just started may have acknowledged a heartbeat in a life it forgot: with
        # leases it grants no vote for an election timeout, as if it had heard from a leader.
        self.quiet_ticks = config.election_tick if self.lease else 0
        self.lease_start: int | None = None  # tick a quorum-acknowledged heartbeat was sent
        self.beats: dict[bytes, _Beat] = {}  # in first-sent order
        self.beat_round = 0
        self._step: Callable[[Message], None] = self._step_follower
        self._tick: Callable[[], None] = self._tick_election
        self.become_follower(self.term, None)

    # -- role changes --------------------------------------------------------------------------

    def _reset(self, term: int) -> None:
        if term != self.term:
            self.term = term
            self.vote = None
        self.lead = None
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        election_tick = self.config.election_tick
        self.randomized_timeout = self.rng.randrange(election_tick, 2 * election_tick)
        self.votes = {}
        self.prs = {}
        self.reads_waiting_commit = []
        self.reads = {}
        self.need_bcast = False
        self.need_read_beat = False
        self.lease_start = None
        self.beats = {}

    def become_follower(self, term: int, lead: str | None) -> None:
        self._reset(term)
        self.lead = lead
        self.role = FOLLOWER
        self._step = self._step_follower
        self._tick = self._tick_election

    def _become_pre_candidate(self) -> None:
        # No term change and no vote: a pre-candidate that cannot win leaves no trace (thesis §9.6).
        self.votes = {}
        self.lead = None
        self.role = PRE_CANDIDATE
        self._step = self._step_candidate
        self._tick = self._tick_election

    def _become_candidate(self) -> None:
        self._reset(self.term + 1)
        self.vote = self.id
        self.role = CANDIDATE
        self._step = self._step_candidate
        self._tick = self._tick_election

    def _become_leader(self) -> None:
        self._reset(self.term)
        self.lead = self.id
        self.role = LEADER
        self._step = self._step_leader
        self._tick = self._tick_heartbeat
        next_index = self.log.last_index + 1
        self.prs = {p: Progress(next_index) for p in self.others}
        # §8: a no-op entry of the new term lets the leader commit (and so serve reads) promptly,
        # and it is what makes counting replicas of older entries safe in practice. The unsafe
        # commit-old-terms variant is the paper's Figure 8 Raft, which has no such entry.
        if not self.commit_old_terms:
            self.log.append_new(Entry(self.term, next_index, EntryType.NOOP))
        self.need_bcast = True
        if not self.others:
            self.maybe_commit()

    # -- elections -----------------------------------------------------------------------------

    def campaign(self) -> None:
        """Start an election (a pre-election first when PreVote is on) [§5.2, thesis §9.6]."""
        if self.role == LEADER:
            return
        if self.config.pre_vote:
            self._become_pre_candidate()
            self._request_votes(_PRE_VOTE, self.term + 1)
        else:
            self._become_candidate()
            self._request_votes(_VOTE, self.term)

    def _request_votes(self, kind: MessageType, term: int) -> None:
        if self._poll(self.id, granted=True):
            return
        self._send_vote_requests(kind, term, self.others)

    def _send_vote_requests(self, kind: MessageType, term: int, peers: Sequence[str]) -> None:
        last_index, last_term = self.log.last_index, self.log.last_term
        for peer in peers:
            self.msgs.append(
                Message(kind, self.id, peer, term, log_term=last_term, index=last_index)
            )

    def _poll(self, voter: str, granted: bool) -> bool:
        """Count a vote; act on a decided election. Returns True once decided."""
        self.votes.setdefault(voter, granted)
        yes = sum(self.votes.values())
        if yes >= self.quorum:
            if self.role == PRE_CANDIDATE:
                self._become_candidate()
                self._request_votes(_VOTE, self.term)
            else:
                self._become_leader()
            return True
        if len(self.votes) - yes >= self.quorum:
            self.become_follower(self.term, None)
            return True
        return False

    # -- ticks ---------------------------------------------------------------------------------

    def tick(self) -> None:
        self.ticks += 1
        self._tick()

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.election_elapsed >= self.randomized_timeout:
            self.election_elapsed = 0
            self.campaign()
        elif self.role != FOLLOWER and self.election_elapsed % self.config.heartbeat_tick == 0:
            self._retry_votes()

    def _retry_votes(self) -> None:
        """Ask again the peers that have not answered, every heartbeat while the election lasts
        [§5.1: servers retry RPCs that get no timely response]: a request lost to a dropped
        link or a peer that was down would otherwise cost a whole election timeout."""
        silent = [p for p in self.others if p not in self.votes]
        if self.role == PRE_CANDIDATE:
            self._send_vote_requests(_PRE_VOTE, self.term + 1, silent)
        else:
            self._send_vote_requests(_VOTE, self.term, silent)

    def _tick_heartbeat(self) -> None:
        self.election_elapsed += 1
        self.heartbeat_elapsed += 1
        if self.election_elapsed >= self.config.election_tick:
            self.election_elapsed = 0
            if self.config.check_quorum and not self._quorum_active():
                self.become_follower(self.term, None)
                return
        if self.heartbeat_elapsed >= self.config.heartbeat_tick:
            self.heartbeat_elapsed = 0
            self._bcast_heartbeat()

    def _quorum_active(self) -> bool:
        active = 1
        for pr in self.prs.values():
            if pr.recent_active:
                active += 1
            pr.recent_active = False
        return active >= self.quorum

    # -- messages ------------------------------------------------------------------------------

    def step(self, m: Message) -> None:
        kind = m.type
        if m.term > self.term:
            if kind is _VOTE or kind is _PRE_VOTE:
                in_lease = (
                    self.config.check_quorum
                    and (self.lead is not None or self.ticks < self.quiet_ticks)
                    and self.election_elapsed < self.config.election_tick
                )
                if in_lease:
                    return  # §6: a live leader exists; don't let a rogue node disrupt it
            if kind is _PRE_VOTE or (kind is _PRE_VOTE_RESP and not m.reject):
                pass  # a pre-vote never changes our term (thesis §9.6)
            elif kind is _APP or kind is _HEARTBEAT or kind is _SNAPSHOT:
                self.become_follower(m.term, m.src)
            else:
                self.become_follower(m.term, None)
        elif m.term < self.term:
            if (self.config.check_quorum or self.config.pre_vote) and (
                kind is _APP or kind is _HEARTBEAT or kind is _SNAPSHOT
            ):
                # A deposed leader cut off for a while may never see a higher term otherwise
                # (its peers' elections were pre-votes it did not receive): tell it.
                self.msgs.append(Message(_APP_RESP, self.id, m.src, self.term))
            elif kind is _PRE_VOTE:
                self.msgs.append(Message(_PRE_VOTE_RESP, self.id, m.src, self.term, reject=True))
            return

        if kind is _VOTE or kind is _PRE_VOTE:
            self._handle_vote_request(m)
        else:
            self._step(m)

    def _handle_vote_request(self, m: Message) -> None:
        resp = _VOTE_RESP if m.type is _VOTE else _PRE_VOTE_RESP
        can_vote = (
            self.vote == m.src
            or (self.vote is None and self.lead is None)
            or (m.type is _PRE_VOTE and m.term > self.term)
        )
        if can_vote and (self.no_log_check or self.log.is_up_to_date(m.index, m.log_term)):
            # A granted pre-vote carries the term asked for, so the pre-candidate counts it.
            self.msgs.append(Message(resp, self.id, m.src, m.term))
            if m.type is _VOTE:
                self.election_elapsed = 0
                self.vote = m.src
        else:
            self.msgs.append(Message(resp, self.id, m.src, self.term, reject=True))

    def _step_follower(self, m: Message) -> None:
        if m.type is _APP:
            self.election_elapsed = 0
            self.lead = m.src
            self._handle_append(m)
        elif m.type is _HEARTBEAT:
            self.election_elapsed = 0
            self.lead = m.src
            self._handle_heartbeat(m)
        elif m.type is _SNAPSHOT:
            self.election_elapsed = 0
            self.lead = m.src
            self._handle_snapshot(m)

    def _step_candidate(self, m: Message) -> None:
        kind = m.type
        if kind is _APP:
            self.become_follower(m.term, m.src)
            self._handle_append(m)
        elif kind is _HEARTBEAT:
            self.become_follower(m.term, m.src)
            self._handle_heartbeat(m)
        elif kind is _SNAPSHOT:
            self.become_follower(m.term, m.src)
            self._handle_snapshot(m)
        elif (kind is _VOTE_RESP and self.role == CANDIDATE) or (
            kind is _PRE_VOTE_RESP and self.role == PRE_CANDIDATE
        ):
            self._poll(m.src, not m.reject)

    def _step_leader(self, m: Message) -> None:
        pr = self.prs.get(m.src)
        if pr is None:
            return
        if m.type is _APP_RESP:
            pr.recent_active = True
            if m.reject:
                hint = m.reject_hint
                if m.reject_term > 0:
                    hint, _ = self.log.find_conflict_by_term(hint, m.reject_term)
                if pr.maybe_decrease(m.index, hint):
                    self._send_append(m.src, pr)
            # min(): only an unsafe flag can make a follower hold more than its leader.
            elif pr.maybe_update(min(m.index, self.log.last_index)):
                if not pr.replicating:
                    pr.become_replicate()
                # Followers learn a new commit index from the next append or heartbeat (every
                # heartbeat_tick): an empty append per commit would double the messages.
                self.maybe_commit()
                if pr.next <= self.log.last_index:
                    self._send_append(m.src, pr)  # more to send, e.g. after a probe
        elif m.type is _HEARTBEAT_RESP:
            pr.recent_active = True
            pr.probe_sent = False
            if pr.match < self.log.last_index:
                self._send_append(m.src, pr)
            if m.context:
                self._ack_read(m.src, m.context)
                if self.lease:
                    self._ack_beat(m.src, m.context)
        elif m.type is _SNAPSHOT_RESP:
            pr.recent_active = True
            if pr.snapshot and m.index == pr.snapshot:
                pr.snapshot_offset = m.offset
                pr.probe_sent = False
                self._send_append(m.src, pr)

    # -- replication ---------------------------------------------------------------------------

    def _send_append(self, to: str, pr: Progress) -> None:
        if pr.paused:
            return
        log = self.log
        prev = pr.next - 1
        if prev < log.offset and self.snapshot is not None:
            self._send_snapshot(to, pr, self.snapshot)
            return
        config = self.config
        hi = min(log.last_index + 1, pr.next + config.max_msg_entries)
        entries = log.slice(pr.next, hi, config.max_msg_bytes)
        self.msgs.append(
            Message(
                _APP,
                self.id,
                to,
                self.term,
                log_term=log.term(prev),
                index=prev,
                entries=entries,
                commit=log.committed,
            )
        )
        pr.sent(entries[-1].index if entries else None)

    def _send_snapshot(self, to: str, pr: Progress, snap: Snapshot) -> None:
        """The next chunk of our snapshot for a follower that needs a compacted entry (§7)."""
        if pr.snapshot != snap.index:  # a new transfer (or a newer snapshot): from the start
            pr.snapshot, pr.snapshot_offset = snap.index, 0
        offset = min(pr.snapshot_offset, len(snap.data))
        chunk = snap.data[offset : offset + self.config.snapshot_chunk]
        self.msgs.append(
            Message(_SNAPSHOT, self.id, to, self.term, log_term=snap.term, index=snap.index,
                    commit=self.log.committed, offset=offset,
                    done=offset + len(chunk) >= len(snap.data), data=chunk)
        )
        pr.replicating = False  # one chunk in flight, like a probe
        pr.probe_sent = True

    def _handle_snapshot(self, m: Message) -> None:
        """A chunk of a leader's snapshot (§7 InstallSnapshot, receiver rules)."""
        log = self.log
        if m.index <= log.committed:  # nothing we lack: say how far we are committed
            self.incoming = None
            self.msgs.append(Message(_APP_RESP, self.id, m.src, self.term, index=log.committed))
            return
        if m.log_term > m.term:  # no leader holds an entry of a term after its own
            self._want_chunk(m, 0)
            return
        key = (m.term, m.src, m.index, m.log_term)
        incoming = self.incoming
        if incoming is None or incoming.key != key:
            incoming = self.incoming = _Incoming(key, bytearray()) if m.offset == 0 else None
        if incoming is None or m.offset > len(incoming.data):
            self._want_chunk(m, len(incoming.data) if incoming else 0)
            return
        if m.offset + len(m.data) > MAX_SNAPSHOT:
            self.incoming = None
            self._want_chunk(m, 0)
            return
        del incoming.data[m.offset :]  # a chunk sent again replaces what it covers
        incoming.data += m.data
        if not m.done:
            self.msgs.append(Message(_SNAPSHOT_RESP, self.id, m.src, self.term, index=m.index,
                                     offset=len(incoming.data)))  # fmt: skip
            return
        self.incoming = None
        data = bytes(incoming.data)
        check = self.config.snapshot_check
        if check is not None and not check(m.index, m.log_term, data):
            self._want_chunk(m, 0)
            return
        if log.restore(m.index, m.log_term):
            self._drop_acks_from(m.index + 1)
        # No commit beyond the snapshot: a kept suffix may still differ from the leader's log.
        self.snapshot = self.installed = Snapshot(m.index, m.log_term, data)
        self.msgs.append(Message(_APP_RESP, self.id, m.src, self.term, index=m.index))

    def _want_chunk(self, m: Message, offset: int) -> None:
        """Refuse a chunk: ask for the one at `offset` (0: the snapshot again, from its start)."""
        self.msgs.append(Message(_SNAPSHOT_RESP, self.id, m.src, self.term, index=m.index,
                                 offset=offset, reject=True))  # fmt: skip

    def compact(self, index: int, data: bytes) -> None:
        """The runtime made a durable snapshot of the state machine at applied `index`."""
        if index <= self.log.offset:
            return
        term = self.log.term(index)
        self.log.compact(index)
        self.snapshot = Snapshot(index, term, data)

    def flush(self) -> None:
        """Send what proposals and reads since the last flush need: one message per peer."""
        if self.need_bcast:
            self.need_bcast = False
            for peer, pr in self.prs.items():
                self._send_append(peer, pr)
        if self.need_read_beat:
            self.need_read_beat = False
            self._bcast_heartbeat()

    def _bcast_heartbeat(self) -> None:
        context = next(reversed(self.reads), b"")  # the newest read: it confirms all older
        if self.lease:
            context = self._lease_context(context)
        committed = self.log.committed
        for peer, pr in self.prs.items():
            # Never tell a follower to commit beyond what it is known to match: its tail may be
            # divergent.
            self.msgs.append(
                Message(
                    _HEARTBEAT,
                    self.id,
                    peer,
                    self.term,
                    commit=min(pr.match, committed),
                    context=context,
                )
            )

    def _handle_append(self, m: Message) -> None:
        log = self.log
        committed = log.committed
        if m.index < committed:  # a stale or duplicated append: say how far we are committed
            self.msgs.append(Message(_APP_RESP, self.id, m.src, self.term, index=committed))
            return
        result = log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if result is not None:
            last_new, truncated = result
            if truncated:
                if truncated <= committed:
                    raise LogCorruption(self.id, truncated, m.src)
                self._drop_acks_from(truncated)
            self.msgs.append(Message(_APP_RESP, self.id, m.src, self.term, index=last_new))
            return
        hint_index, hint_term = log.find_conflict_by_term(min(m.index, log.last_index), m.log_term)
        self.msgs.append(
            Message(
                _APP_RESP,
                self.id,
                m.src,
                self.term,
                index=m.index,
                reject=True,
                reject_hint=hint_index,
                reject_term=hint_term,
            )
        )

    def _drop_acks_from(self, index: int) -> None:
        """Unsend acknowledgements of entries that were just replaced: they leave only after
        this Ready is persisted, and the disk will not hold what they promise. (Losing a
        message is always safe; a false acknowledgement could commit a lost entry.)"""
        self.msgs = [
            m for m in self.msgs if not (m.type is _APP_RESP and not m.reject and m.index >= index)
        ]

    def _handle_heartbeat(self, m: Message) -> None:
        self.log.commit_to(min(m.commit, self.log.last_index))
        self.msgs.append(Message(_HEARTBEAT_RESP, self.id, m.src, self.term, context=m.context))

    def maybe_commit(self) -> None:
        """Advance the commit index to what a majority persisted, if of this term (§5.4.2)."""
        log = self.log
        matches = [log.stable, *(pr.match for pr in self.prs.values())]
        index = committed_index(matches)
        if index <= log.committed:
            return
        if log.term(index) != self.term and not self.commit_old_terms:
            return
        log.commit_to(index)
        if self.reads_waiting_commit and log.term(index) == self.term:
            waiting, self.reads_waiting_commit = self.reads_waiting_commit, []
            for context in waiting:
                self._start_read(context)

    # -- client requests -----------------------------------------------------------------------

    def propose(self, data: bytes) -> tuple[int, int]:
        if self.role != LEADER:
            raise NotLeader(self.lead)
        index = self.log.last_index + 1
        self.log.append_new(Entry(self.term, index, EntryType.NORMAL, data))
        if self.others:
            self.need_bcast = True
        return index, self.term

    def read_index(self, context: bytes) -> None:
        if self.role != LEADER:
            raise NotLeader(self.lead)
        if self.log.term(self.log.committed) != self.term:
            self.reads_waiting_commit.append(context)
        else:
            self._start_read(context)

    def _start_read(self, context: bytes) -> None:
        if self.lease and self.in_lease():
            self.read_states.append(ReadState(self.log.committed, context))
            return
        if not self.others:
            self.read_states.append(ReadState(self.log.committed, context))
            return
        self.reads[context] = _PendingRead(self.log.committed, {self.id})
        self.need_read_beat = True

    def _ack_read(self, voter: str, context: bytes) -> None:
        pending = self.reads.get(context)
        if pending is None:
            return
        pending.acks.add(voter)
        if len(pending.acks) < self.quorum:
            return
        # The round confirmed leadership after every earlier request arrived: release those too.
        while self.reads:
            earlier, read = next(iter(self.reads.items()))
            del self.reads[earlier]
            self.read_states.append(ReadState(read.index, earlier))
            if earlier == context:
                break

    # -- leases (thesis §6.4.1) ----------------------------------------------------------------

    def in_lease(self) -> bool:
        """The leader may serve reads without a quorum round: a quorum acknowledged a heartbeat
        of this term sent less than lease_ticks ago."""
        if not self.others:
            return True
        start = self.lease_start
        return start is not None and self.ticks < start + self.config.lease_ticks

    def _lease_context(self, context: bytes) -> bytes:
        """The context of a heartbeat round, noted with the tick it is first sent. A round
        without reads gets a context of its own (9 bytes: never a runtime's read context)."""
        if not context:
            self.beat_round += 1
            context = b"L" + self.beat_round.to_bytes(8, "big")
        self.beats.setdefault(context, _Beat(self.ticks, {self.id}))
        # A round older than a lease can start no lease: forget it (lost or unanswered).
        horizon = self.ticks - self.config.lease_ticks
        while self.beats:
            first = next(iter(self.beats))
            if self.beats[first].sent > horizon:
                break
            del self.beats[first]
        return context

    def _ack_beat(self, voter: str, context: bytes) -> None:
        beat = self.beats.get(context)
        if beat is None:
            return
        beat.acks.add(voter)
        if len(beat.acks) < self.quorum:
            return
        # Measured from the send, not from this answer: followers reset their election timers
        # when the heartbeat arrived, which was after it left.
        if self.lease_start is None or beat.sent > self.lease_start:
            self.lease_start = beat.sent
        while self.beats:  # this round and older ones start no later lease
            first = next(iter(self.beats))
            del self.beats[first]
            if first == context:
                break

    def hard_state(self) -> HardState:
        return HardState(self.term, self.vote, self.log.committed)

"""A deterministic simulated network of Raft cores, with fault verbs and safety invariants.

Every node is a `RawNode` driven the way the runtime drives it: ready() → persist hard state
and entries (into the node's simulated disk) → send messages → apply committed entries → serve
read states → advance(). Time is a tick counter; a message takes 0 ticks unless a fault delays
it, and `settle()` delivers everything due, so a broadcast round takes far less than an
election timeout. All randomness (election timeouts of every node life, drops, delays) comes
from one seeded `random.Random`: the same seed replays the same run.

Fault verbs, named as in etcd's raft tests: `cut(a, b)`, `isolate(a)`, `partition(*groups)`,
`drop(rate)`, `delay(max_ticks)`, `reorder(rate, max_ticks)`, `duplicate(rate)`,
`crash(a)` (keeps its durable state), `restart(a)`, `recover()` (heals the network).

Invariants checked on every step; a breach raises `InvariantViolation` at once:
- at most one leader per term (Raft §5.2, Election Safety);
- every node applies, at each index, the same entry (State Machine Safety, §5.4.3);
- each node life applies entries in index order from 1, with no gaps;
- an entry is applied only while a majority of nodes holds it durably (§5.4.2, Figure 8);
- every durable log agrees with the others up to its durable commit index (`check_logs`,
  run by `one()` and by tests at the end);
- a read is served at an index no lower than any entry applied before it was asked (§8);
- a vote, an acknowledged entry or a new term is on disk before the message saying so leaves.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from splitbrain.raft.messages import Entry, EntryType, HardState, Message, MessageType
from splitbrain.raft.quorum import majority
from splitbrain.raft.rawnode import Config, RawNode, Status


class InvariantViolation(AssertionError):
    """A safety property of Raft does not hold in this run."""


@dataclass(slots=True)
class SimNode:
    id: str
    config: Config
    raw: RawNode | None  # None while crashed
    hard_state: HardState = field(default_factory=HardState)  # durable
    entries: list[Entry] = field(default_factory=list)  # durable; entries[i - 1] has index i
    applied: list[Entry] = field(default_factory=list)  # this life, in order

    @property
    def alive(self) -> bool:
        return self.raw is not None


class SimNet:
    def __init__(
        self,
        size: int = 3,
        *,
        seed: int = 0,
        election_tick: int = 10,
        heartbeat_tick: int = 1,
        pre_vote: bool = True,
        check_quorum: bool = True,
        max_msg_entries: int = 64,  # below the default, so tests also cross the limit
        unsafe: Iterable[str] = (),
        read_mode: str = "index",
    ) -> None:
        self.rng = random.Random(seed)
        self.ids = tuple(f"n{i}" for i in range(1, size + 1))
        self.time = 0
        self.nodes: dict[str, SimNode] = {}
        for node_id in self.ids:
            config = Config(
                node_id,
                self.ids,
                election_tick=election_tick,
                heartbeat_tick=heartbeat_tick,
                pre_vote=pre_vote,
                check_quorum=check_quorum,
                max_msg_entries=max_msg_entries,
                unsafe=frozenset(unsafe),
                read_mode=read_mode,
            )
            self.nodes[node_id] = SimNode(node_id, config, None)
            self.restart(node_id)
        self._queue: list[tuple[int, float, int, Message]] = []  # (due, order, seq, msg)
        self._seq = 0
        self._cut: set[tuple[str, str]] = set()
        self._isolated: set[str] = set()
        self._drop_rate = 0.0
        self._max_delay = 0
        self._reorder = (0.0, 0)
        self._duplicate_rate = 0.0
        self._filters: list[Callable[[Message], bool]] = []
        self.sent: Counter[MessageType] = Counter()
        self.leaders: dict[int, str] = {}  # term -> the node that led it
        self.committed: dict[int, Entry] = {}  # index -> the entry applied there
        self.max_applied = 0
        self._read_floor: dict[bytes, int] = {}
        self.reads: dict[bytes, int] = {}  # context -> index a read was served at

    # -- node lives ----------------------------------------------------------------------------

    def crash(self, node_id: str) -> None:
        """Stop a node; what it persisted survives, everything else is lost."""
        self.nodes[node_id].raw = None

    def restart(self, node_id: str) -> None:
        """Start a node (again) from its durable hard state and entries."""
        node = self.nodes[node_id]
        node.raw = RawNode(
            node.config,
            hard_state=node.hard_state,
            entries=tuple(node.entries),
            rng=random.Random(self.rng.getrandbits(64)),
        )
        node.applied = []

    # -- network faults ------------------------------------------------------------------------

    def cut(self, a: str, b: str) -> None:
        """Drop all traffic between a and b, both ways (in flight too)."""
        self._cut |= {(a, b), (b, a)}

    def isolate(self, a: str) -> None:
        """Cut a from every other node (MIT 6.824's disconnect)."""
        self._isolated.add(a)
        for other in self.ids:
            if other != a:
                self.cut(a, other)

    def partition(self, *groups: Iterable[str]) -> None:
        """Cut every link between nodes of different groups (nodes in no group are isolated)."""
        group_of = {n: i for i, group in enumerate(groups) for n in group}
        for a in self.ids:
            for b in self.ids:
                if a != b and (a not in group_of or group_of.get(a) != group_of.get(b)):
                    self._cut.add((a, b))

    def connect(self, a: str, b: str) -> None:
        self._cut -= {(a, b), (b, a)}

    def rejoin(self, a: str) -> None:
        """Undo isolate(a): connect a to every node that is not isolated (6.824's connect)."""
        self._isolated.discard(a)
        for other in self.ids:
            if other not in self._isolated:
                self.connect(a, other)

    def drop(self, rate: float) -> None:
        """Lose each message with probability `rate`."""
        self._drop_rate = rate

    def delay(self, max_ticks: int) -> None:
        """Each message takes a uniformly random 0..max_ticks ticks (which also reorders)."""
        self._max_delay = max_ticks

    def reorder(self, rate: float, max_ticks: int) -> None:
        """Hold back a fraction `rate` of messages for up to `max_ticks` ticks (long reordering)."""
        self._reorder = (rate, max_ticks)

    def duplicate(self, rate: float) -> None:
        """Deliver each message twice with probability `rate`."""
        self._duplicate_rate = rate

    def filter(self, predicate: Callable[[Message], bool]) -> None:
        """Drop every message for which predicate(msg) is true (scripted scenarios)."""
        self._filters.append(predicate)

    def recover(self) -> None:
        """Heal every network fault (crashed nodes stay crashed)."""
        self._cut.clear()
        self._isolated.clear()
        self._drop_rate = 0.0
        self._max_delay = 0
        self._reorder = (0.0, 0)
        self._duplicate_rate = 0.0
        self._filters.clear()

    # -- driving -------------------------------------------------------------------------------

    def tick(self, ticks: int = 1, *, frozen: Iterable[str] = ()) -> None:
        """Advance time; the clocks of `frozen` nodes stand still meanwhile (a clock fault)."""
        frozen = set(frozen)
        for _ in range(ticks):
            self.time += 1
            for node in self.nodes.values():
                if node.raw is not None and node.id not in frozen:
                    node.raw.tick()
                    self._check_leader(node)
            self.settle()

    def settle(self) -> None:
        """Process readies and deliver every message due by now, until nothing moves."""
        for _ in range(100_000):
            moved = False
            for node in self.nodes.values():
                if node.raw is not None and node.raw.has_ready():
                    self._handle_ready(node)
                    moved = True
            while self._queue and self._queue[0][0] <= self.time:
                *_, msg = heapq.heappop(self._queue)
                self._deliver(msg)
                moved = True
            if not moved:
                return
        raise RuntimeError("the simulated network did not settle (a message storm?)")

    def campaign(self, node_id: str) -> None:
        """Make a node start an election now."""
        self._raw(node_id).campaign()
        self.settle()

    def propose(self, node_id: str, data: bytes) -> tuple[int, int]:
        result = self._raw(node_id).propose(data)
        self.settle()
        return result

    def read(self, node_id: str, ctx: bytes) -> None:
        """Ask node_id for a ReadIndex; `reads[ctx]` gets the index once it is served."""
        self._read_floor[ctx] = self.max_applied
        self._raw(node_id).read_index(ctx)
        self.settle()

    def _raw(self, node_id: str) -> RawNode:
        raw = self.nodes[node_id].raw
        if raw is None:
            raise RuntimeError(f"{node_id} is crashed")
        return raw

    def _send(self, msg: Message) -> None:
        self.sent[msg.type] += 1
        copies = 2 if self.rng.random() < self._duplicate_rate else 1
        for _ in range(copies):
            if self._drop_rate and self.rng.random() < self._drop_rate:
                continue
            due = self.time + (self.rng.randint(0, self._max_delay) if self._max_delay else 0)
            rate, max_ticks = self._reorder
            if rate and self.rng.random() < rate:
                due += self.rng.randint(1, max_ticks)
            self._seq += 1
            heapq.heappush(self._queue, (due, self.rng.random(), self._seq, msg))

    def _deliver(self, msg: Message) -> None:
        node = self.nodes[msg.dst]
        if node.raw is None or (msg.src, msg.dst) in self._cut:
            return
        if any(predicate(msg) for predicate in self._filters):
            return
        node.raw.step(msg)
        self._check_leader(node)

    def _handle_ready(self, node: SimNode) -> None:
        assert node.raw is not None
        rd = node.raw.ready()
        if rd.hard_state is not None:
            node.hard_state = rd.hard_state
        if rd.entries:
            del node.entries[rd.entries[0].index - 1 :]
            node.entries.extend(rd.entries)
        for msg in rd.messages:
            self._check_durable_before_send(node, msg)
            self._send(msg)
        for entry in rd.committed_entries:
            self._apply(node, entry)
        for read in rd.read_states:
            floor = self._read_floor.get(read.context, 0)
            if read.index < floor:
                raise InvariantViolation(
                    f"stale read on {node.id}: served at index {read.index}, but entry {floor} "
                    "was applied before the read was asked"
                )
            self.reads[read.context] = read.index
        node.raw.advance(rd)

    # -- invariants ----------------------------------------------------------------------------

    def _check_leader(self, node: SimNode) -> None:
        raw = node.raw
        assert raw is not None
        status = raw.status()
        if status.role == "leader":
            other = self.leaders.setdefault(status.term, node.id)
            if other != node.id:
                raise InvariantViolation(f"two leaders in term {status.term}: {other}, {node.id}")

    def _check_durable_before_send(self, node: SimNode, msg: Message) -> None:
        """What a message promises must already be on the node's disk (Figure 2, "Persistent
        state ... updated on stable storage before responding to RPCs")."""
        if msg.dst == node.id:
            raise InvariantViolation(f"{node.id} sent a message to itself: {msg}")
        if msg.type == MessageType.VOTE_RESP and not msg.reject:
            # A later term in the same Ready also binds: no second vote in msg.term is possible.
            hard_state = node.hard_state
            if hard_state.term < msg.term or (
                hard_state.term == msg.term and hard_state.vote != msg.dst
            ):
                raise InvariantViolation(f"{node.id} granted a vote it has not persisted: {msg}")
        elif msg.type == MessageType.APP_RESP and not msg.reject and msg.index:
            if len(node.entries) < msg.index:
                raise InvariantViolation(
                    f"{node.id} acknowledged index {msg.index} but persisted {len(node.entries)}"
                )
        elif msg.type in (MessageType.APP, MessageType.VOTE) and node.hard_state.term < msg.term:
            raise InvariantViolation(f"{node.id} sent term {msg.term} before persisting it")

    def _apply(self, node: SimNode, entry: Entry) -> None:
        if entry.index != len(node.applied) + 1:
            raise InvariantViolation(
                f"{node.id} applied index {entry.index} after {len(node.applied)}"
            )
        first = self.committed.setdefault(entry.index, entry)
        if first != entry:
            raise InvariantViolation(
                f"{node.id} applied {_describe(entry)} at index {entry.index}, "
                f"but {_describe(first)} was applied there before"
            )
        holders = sum(
            len(n.entries) >= entry.index and n.entries[entry.index - 1] == entry
            for n in self.nodes.values()
        )
        if holders < majority(len(self.nodes)):
            raise InvariantViolation(
                f"{node.id} applied index {entry.index} held durably by only {holders} nodes"
            )
        node.applied.append(entry)
        self.max_applied = max(self.max_applied, entry.index)

    def check_logs(self) -> None:
        """Every node's durable log agrees, up to its durable commit index, with what was
        applied anywhere (§5.4.3), crashed nodes included."""
        seen: dict[int, tuple[str, Entry]] = {}
        for node in self.nodes.values():
            for entry in node.entries[: node.hard_state.commit]:
                first = self.committed.get(entry.index)
                if first is None:
                    first = seen.setdefault(entry.index, (node.id, entry))[1]
                if first != entry:
                    raise InvariantViolation(
                        f"{node.id} holds {_describe(entry)} as committed at index "
                        f"{entry.index}, but {_describe(first)} is committed there"
                    )

    # -- queries for tests ---------------------------------------------------------------------

    def status(self, node_id: str) -> Status:
        return self._raw(node_id).status()

    def alive(self) -> list[str]:
        return [n for n, node in self.nodes.items() if node.alive]

    def leader(self, among: Iterable[str] | None = None) -> str | None:
        """The node of `among` (default: live nodes) that leads the highest term, if any."""
        best: tuple[int, str] | None = None
        for node_id in among if among is not None else self.alive():
            raw = self.nodes[node_id].raw
            if raw is None:
                continue
            status = raw.status()
            if status.role == "leader" and (best is None or status.term > best[0]):
                best = (status.term, node_id)
        return best[1] if best else None

    def wait_leader(self, among: Iterable[str] | None = None, ticks: int = 200) -> str:
        group = list(among) if among is not None else None
        for _ in range(ticks):
            leader = self.leader(group)
            if leader is not None:
                return leader
            self.tick()
        raise AssertionError(f"no leader among {group or self.alive()} after {ticks} ticks")

    def commands(self, node_id: str) -> list[bytes]:
        """The client commands a node has applied in this life, in order."""
        return [e.data for e in self.nodes[node_id].applied if e.type == EntryType.NORMAL]

    def committed_index_of(self, data: bytes) -> int:
        """The index at which the command `data` was applied (it must have been)."""
        return next(i for i, e in self.committed.items() if e.data == data)

    def applied_count(self, index: int) -> tuple[int, Entry | None]:
        """How many live nodes applied `index`, and the entry there."""
        count = sum(len(n.applied) >= index for n in self.nodes.values() if n.alive)
        return count, self.committed.get(index)

    def one(
        self,
        data: bytes,
        expected: int,
        *,
        retry: bool = True,
        among: Sequence[str] | None = None,
        ticks: int = 300,
    ) -> int:
        """Get `data` committed and applied by at least `expected` nodes; returns its index.

        As the MIT 6.824 tests do: offer it to whichever node leads, wait, and (with `retry`)
        offer it again if it was lost with a deposed leader.
        """
        deadline = self.time + ticks
        while self.time < deadline:
            for node_id in among if among is not None else self.alive():
                if self.nodes[node_id].alive and self.status(node_id).role == "leader":
                    index, _ = self.propose(node_id, data)  # a leader: cannot raise NotLeader
                    break
            else:
                self.tick()
                continue
            wait_until = min(deadline, self.time + 40)
            while self.time < wait_until:
                count, entry = self.applied_count(index)
                if count >= expected and entry is not None and entry.data == data:
                    self.check_logs()
                    return index
                self.tick()
            if not retry:
                break
        raise AssertionError(f"{data!r} was not applied by {expected} nodes in {ticks} ticks")


def _describe(entry: Entry) -> str:
    if entry.type == EntryType.NOOP:
        return f"no-op of term {entry.term}"
    return f"{entry.data!r} of term {entry.term}"

"""The invariants only a simulator can check, as an Observer of the nodes (raft/host.py).

Each is a property of a correct Raft; those about durability are checked against what the
simulated disks hold durably (the fsynced bytes of disk.py, parsed here; never what a WAL
believes it wrote):

- `durable-before-apply`: before any node applies an entry, a majority of the nodes hold it
  durably.
- `durable-promise`: a node sends an append acknowledgement only for entries its disk holds
  durably, and a granted vote only once its disk holds that vote (Figure 2: persistent state is
  updated on stable storage before responding). A message of a term older than the durable one
  was true when it was made and is not held to what is durable now (as durability.py does).
- `one-vote-per-term`: a node grants its vote in a term to one candidate only, across restarts.
- `recovery-complete`: a (re)starting node recovers exactly the term, vote and log that the
  records on its disk hold (its page cache, which a kill -9 keeps and a power loss reduces to
  the durable bytes), replayed in write order: the last hard state, every entry.
- `acked-entry-kept`: a node never replaces an entry at or below the last index it acknowledged
  to the leader of a term while it is still in that term (within a term the leader's log only
  grows and matches what was acknowledged, so a conflict there cannot arise).
- `commit-by-leader`: no node commits or applies an index beyond the highest one a leader has
  committed. Only a leader decides that an entry is committed (§5.3); the others learn it from
  the leader's messages, which leave after that decision, or from a snapshot of what it
  applied. A node that takes more as committed applies entries no quorum may hold.
- `leader-complete`: a new leader holds every entry committed before it (Leader Completeness,
  §5.4): an entry first applied while the highest term was T — of any elected leader, or
  durable on any disk (a leader's term is durable before it sends anything, so T is at least
  the term of the leader that committed the entry) — is in the log of every leader of a term
  above T, at its index with its term.

With snapshots, a node's durable log is its WAL after the snapshot mark plus the durable snapshot
file: entries up to the newer of the two snapshot indexes count as held (a snapshot holds only
committed entries; the digests in the `snapshot` events are compared by the log-agreement
checker), recovery keeps what `wal.after_snapshot` keeps, and an index a leader compacted is
not asked of its log.

Each violation names the node, the index or term, and the time: `time` in ns on the nodes'
event clock (as in events.jsonl, which clock faults do not skew), `at` in virtual seconds.
`results()` is what the sim writes to invariants.json in the run directory; `splitbrain check`
reports it again from there. The reads' rules are checked from the nodes' `read` events, as on
real nodes (checker/read_safety.py), and so is `unsafe-commit` (checker/commit_safety.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from splitbrain.raft import codec, snapshot, wal
from splitbrain.raft.messages import Entry, EntryType, HardState, Message, MessageType
from splitbrain.raft.quorum import majority
from splitbrain.raft.rawnode import COMPACTED
from splitbrain.sim.disk import SimDisk

MAX_VIOLATIONS = 200  # per invariant: enough to debug, bounded for results.json
DESCRIPTIONS = {
    "durable-before-apply": "a majority holds an entry durably (fsynced) before it is applied",
    "durable-promise": "an append ack or a granted vote leaves only once the disk holds it durably",
    "one-vote-per-term": "a node votes for one candidate per term, across restarts",
    "recovery-complete": "a restarted node recovers the term, vote and log its disk holds",
    "acked-entry-kept": "a node never replaces an entry it acknowledged to its term's leader",
    "commit-by-leader": "no node commits or applies beyond what a leader has committed",
    "leader-complete": "a new leader holds every entry committed before its term",
}
_APP_RESP, _VOTE_RESP = MessageType.APP_RESP, MessageType.VOTE_RESP


def _under_snapshot(terms: list[int], base: int, index: int, term: int) -> list[int]:
    """`wal.after_snapshot` on a log of terms that starts after `base`."""
    entries = [Entry(t, i, EntryType.NOOP) for i, t in enumerate(terms, base + 1)]
    return [e.term for e in wal.after_snapshot(entries, index, term)]


def _replay(records: Iterable[tuple[int, int, bytes, bytes]], pos: int, terms: list[int],
            base: int, hard_state: tuple[int, str | None], cuts: list[tuple[int, int]] | None
            ) -> tuple[tuple[int, str | None], int, int]:  # fmt: skip
    """Replay WAL `records` (ending at `pos` so far) into `terms` (terms[i - 1]: the term of
    entry base + i) and the (term, vote) of the last hard state, as recovery must: an entry
    replaces the log from its index on, a snapshot mark starts it after its index. With
    `cuts`, each batch of entries that replaced some appends (first replaced index, the node's
    term when it wrote them): the term of the hard-state record that ends its batch (a Ready
    writes its entries, then its hard state), or the term in force. Returns the hard state,
    the end of the last whole record and the base."""
    cut = 0
    for _, end, kind, payload in records:
        if kind == wal.ENTRY:
            entry, _ = codec.decode_entry_from(payload, 0)
            if entry.index <= base + len(terms) and not cut:
                cut = entry.index
            del terms[max(entry.index - base - 1, 0) :]
            terms.append(entry.term)
        elif kind == wal.HARD_STATE:
            hs = codec.decode_hard_state(payload)
            hard_state = (hs.term, hs.vote)
            if cut and cuts is not None:
                cuts.append((cut, hs.term))
            cut = 0
        elif kind == wal.SNAPSHOT:
            index, term = wal.decode_mark(payload)
            terms[:] = _under_snapshot(terms, base, index, term)
            base = index
        pos = end
    if cut and cuts is not None:
        cuts.append((cut, hard_state[0]))
    return hard_state, pos, base


class _DurableLog:
    """What one node's WAL holds durably, parsed incrementally from its disk: the terms of the
    entries, the last hard state, and the batches that replaced entries since the last look."""

    def __init__(self, disk: SimDisk, path: Path) -> None:
        self._disk = disk
        self._path = path
        self._snapshot_path = path.parent / snapshot.FILE_NAME
        self.terms: list[int] = []  # terms[i - 1]: the term of durable entry base + i
        self.base = 0  # the WAL's snapshot mark
        self.covered = 0  # entries up to here are in a durable snapshot (file or mark)
        self.hard_state: tuple[int, str | None] = (0, None)  # (term, vote)
        self._parsed = 0  # bytes of the durable copy parsed

    @property
    def last(self) -> int:
        """The last index held durably (in the WAL or a snapshot)."""
        return max(self.base + len(self.terms), self.covered)

    def _snapshot(self, page_cache: bool) -> tuple[int, int] | None:
        f = self._disk.files.get(self._snapshot_path)
        if f is None:
            return None
        return snapshot.peek(f.data if page_cache else f.durable)

    def update(self) -> list[tuple[int, int]]:
        """Parse what became durable since the last call; the batches that replaced entries."""
        cuts: list[tuple[int, int]] = []
        mark = self._snapshot(page_cache=False)
        f = self._disk.files.get(self._path)
        if f is not None and (changed := f.take_changes()) is not None:
            if changed < self._parsed:  # rewritten below what we parsed: parse again, and do
                self.terms.clear()  # not take old replacements for new ones
                self._parsed = 0
                self.hard_state, self._parsed, self.base = _replay(
                    wal.records(f.durable, 0), 0, self.terms, 0, (0, None), None)
            else:
                self.hard_state, self._parsed, self.base = _replay(
                    wal.records(f.durable, self._parsed), self._parsed, self.terms,
                    self.base, self.hard_state, cuts)  # fmt: skip
        self.covered = max(self.base, mark[0] if mark else 0)
        return cuts

    def holds(self, index: int, term: int) -> bool:
        if index <= self.covered:
            return True  # in a durable snapshot: committed entries only
        at = index - self.base
        return 0 < at <= len(self.terms) and self.terms[at - 1] == term

    def written(self) -> tuple[list[tuple[int, int]], tuple[int, str | None], int]:
        """The log entries (index, term), hard state and snapshot index that the page cache
        describes, as recovery reads them."""
        f = self._disk.files.get(self._path)
        terms: list[int] = []
        if f is None:
            return [], (0, None), 0
        hard_state, _, base = _replay(wal.records(f.read()), 0, terms, 0, (0, None), None)
        mark = self._snapshot(page_cache=True)
        if mark is not None and mark[0] > base:
            terms = _under_snapshot(terms, base, *mark)
            base = mark[0]
        return list(enumerate(terms, base + 1)), hard_state, base


class Invariants:
    def __init__(self, disks: Mapping[str, SimDisk], wal_path: Callable[[str], Path],
                 clock: Callable[[], int], time: Callable[[], float]) -> None:  # fmt: skip
        self._durable = {n: _DurableLog(disk, wal_path(n)) for n, disk in disks.items()}
        self._quorum = majority(len(disks))
        self._clock = clock
        self._time = time
        self._acked: dict[str, tuple[int, int]] = {}  # node -> (term, highest index acked in it)
        self._votes: dict[tuple[str, int], str] = {}  # (voter, term) -> candidate
        self._leader_term = 0  # the highest term a leader was elected in
        self._leader_commit = 0  # the highest commit index a leader has reached
        self._committed: list[tuple[int, int]] = []  # [i - 1]: (term of entry i, highest term)
        self.violations: dict[str, list[dict[str, Any]]] = {k: [] for k in DESCRIPTIONS}
        self.counts = dict.fromkeys(DESCRIPTIONS, 0)  # violations, including those not kept
        self.checked = dict.fromkeys(DESCRIPTIONS, 0)

    def _violation(self, kind: str, **facts: Any) -> None:
        self.counts[kind] += 1
        if len(self.violations[kind]) < MAX_VIOLATIONS:
            self.violations[kind].append(
                {**facts, "time": self._clock(), "at": round(self._time(), 6)})

    # -- the Observer ----------------------------------------------------------------------

    def recovered(self, node: str, hard_state: HardState, entries: Sequence[Entry],
                  snapshot: int = 0) -> None:  # fmt: skip
        self.checked["recovery-complete"] += 1
        terms, (term, vote), base = self._durable[node].written()
        got = [(e.index, e.term) for e in entries]
        problems = []
        if snapshot != base:
            problems.append(f"from the snapshot of entry {snapshot} where its disk holds "
                            f"one of entry {base}")  # fmt: skip
        if (hard_state.term, hard_state.vote) != (term, vote):
            problems.append(f"term {hard_state.term} vote {hard_state.vote} where its disk "
                            f"holds term {term} vote {vote}")  # fmt: skip
        if got != terms:
            first = next((a[0] for a, b in zip(got, terms, strict=False) if a != b),
                         base + min(len(got), len(terms)) + 1)  # fmt: skip
            problems.append(f"{len(got)} entries where its disk holds {len(terms)}, first "
                            f"differing at index {first}")  # fmt: skip
        if problems:
            self._violation("recovery-complete", node=node, term=hard_state.term,
                            message=f"{node} recovers {'; '.join(problems)}")  # fmt: skip

    def promised(self, node: str, msg: Message) -> None:
        if msg.reject:
            return
        durable = self._durable[node]
        self._kept(node, durable.update())
        term, vote = durable.hard_state
        if msg.type is _APP_RESP:
            self.checked["durable-promise"] += 1
            if msg.term >= term and msg.index > durable.last:
                self._violation("durable-promise", node=node, index=msg.index, term=msg.term,
                                message=f"{node} acknowledges index {msg.index} to {msg.dst} "
                                        f"(term {msg.term}) holding entries up to "
                                        f"{durable.last} durably")  # fmt: skip
            acked_term, acked = self._acked.get(node, (0, 0))
            if msg.term > acked_term or (msg.term == acked_term and msg.index > acked):
                self._acked[node] = (msg.term, msg.index)
        elif msg.type is _VOTE_RESP:
            self.checked["durable-promise"] += 1
            self.checked["one-vote-per-term"] += 1
            if msg.term >= term and (term, vote) != (msg.term, msg.dst):
                self._violation("durable-promise", node=node, term=msg.term,
                                message=f"{node} votes for {msg.dst} in term {msg.term} while "
                                        f"its disk holds term {term} vote {vote}")  # fmt: skip
            before = self._votes.setdefault((node, msg.term), msg.dst)
            if before != msg.dst:
                self._violation("one-vote-per-term", node=node, term=msg.term,
                                message=f"{node} votes for {msg.dst} in term {msg.term} after "
                                        f"voting for {before} in it")  # fmt: skip

    def _kept(self, node: str, cuts: list[tuple[int, int]]) -> None:
        for index, term in cuts:
            self.checked["acked-entry-kept"] += 1
            acked_term, acked = self._acked.get(node, (0, 0))
            if term == acked_term and index <= acked:
                self._violation("acked-entry-kept", node=node, index=index, term=term,
                                message=f"{node} replaces its log from index {index} in term "
                                        f"{term}, after acknowledging index {acked} to the "
                                        "leader of that term")  # fmt: skip

    def leading(self, node: str, term: int, term_at: Callable[[int], int | None]) -> None:
        self.checked["leader-complete"] += 1
        self._leader_term = max(self._leader_term, term)
        for index, (entry_term, highest) in enumerate(self._committed, 1):
            if highest < term and term_at(index) not in (entry_term, COMPACTED):
                have = term_at(index)
                self._violation("leader-complete", node=node, index=index, term=term,
                                message=f"{node} leads term {term} without committed entry "
                                        f"{index} (term {entry_term}): its log has "
                                        f"{'none' if have is None else f'term {have}'} there")
                return

    def committing(self, node: str, commit: int, leader: bool) -> None:
        if leader:
            self._leader_commit = max(self._leader_commit, commit)
        else:
            self._by_leader(node, commit, "commits up to")

    def _by_leader(self, node: str, index: int, does: str) -> None:
        self.checked["commit-by-leader"] += 1
        if index > self._leader_commit:
            self._violation("commit-by-leader", node=node, index=index,
                            leader_commit=self._leader_commit,
                            message=f"{node} {does} index {index}, but no leader has committed "
                                    f"beyond index {self._leader_commit}")  # fmt: skip

    def applying(self, node: str, entries: Sequence[Entry]) -> None:
        durable = self._durable
        for d in durable:
            self._kept(d, durable[d].update())
        committed = self._committed
        highest = max(self._leader_term, *(d.hard_state[0] for d in durable.values()))
        for e in entries:
            if e.index == len(committed) + 1:
                committed.append((e.term, highest))
            holders = [n for n, d in durable.items() if d.holds(e.index, e.term)]
            self.checked["durable-before-apply"] += 1
            if len(holders) < self._quorum:
                self._violation("durable-before-apply", node=node, index=e.index, term=e.term,
                                durable_on=holders,
                                message=f"{node} applies entry {e.index} (term {e.term}) held "
                                        f"durably by {len(holders)} of {len(durable)} nodes "
                                        f"({', '.join(holders) or 'none'})")  # fmt: skip
        if entries:
            self._by_leader(node, entries[-1].index, "applies")

    # -- results ---------------------------------------------------------------------------

    def results(self) -> dict[str, dict[str, Any]]:
        out = {}
        for kind, description in DESCRIPTIONS.items():
            result: dict[str, Any] = {"valid": not self.counts[kind], "checked": self.checked[kind],
                                      "description": description}  # fmt: skip
            if self.counts[kind]:
                first = self.violations[kind][0]
                result["cause"] = f"{self.counts[kind]} violation(s); first: {first['message']}"
                result["violations"] = self.violations[kind]
            out[kind] = result
        return out

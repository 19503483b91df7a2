"""The invariants only a simulator can check, as an Observer of the nodes (raft/host.py).

- `durable-before-apply`: before any node applies an entry, a majority of the nodes hold it
  durably — read from the fsynced bytes of their simulated disks (disk.py), not from what any
  WAL believes it wrote.
- `read-sees-applied`: a read is served at an applied index at least as high as every index any
  node had applied when the read reached the node that serves it (a linearizable read cannot
  miss a write some node already applied).

Each violation names the node, the index, and the time: `time` in ns on the nodes' event clock
(as in events.jsonl), `at` in virtual seconds. `results()` is what the sim writes to
invariants.json in the run directory; `splitbrain check` reports it again from there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from splitbrain.raft import codec, wal
from splitbrain.raft.messages import Entry
from splitbrain.raft.quorum import majority
from splitbrain.sim.disk import SimDisk

MAX_VIOLATIONS = 200  # per invariant: enough to debug, bounded for results.json
DESCRIPTIONS = {
    "durable-before-apply": "a majority holds an entry durably (fsynced) before it is applied",
    "read-sees-applied": "a read is served at an index >= everything applied anywhere before",
}


class _DurableLog:
    """The terms of the entries a WAL holds durably, parsed incrementally from its disk."""

    def __init__(self, disk: SimDisk, path: Path) -> None:
        self._disk = disk
        self._path = path
        self.terms: list[int] = []  # terms[i - 1]: the term of durable entry i
        self._parsed = 0  # bytes of the durable copy parsed into terms

    def term(self, index: int) -> int | None:
        f = self._disk.files.get(self._path)
        if f is not None:
            changed = f.take_changes()
            if changed is not None:
                if changed < self._parsed:  # rewritten below what we parsed: parse again
                    self.terms.clear()
                    self._parsed = 0
                for _, end, kind, payload in wal.records(f.durable, self._parsed):
                    if kind == wal.ENTRY:
                        entry, _ = codec.decode_entry_from(payload, 0)
                        del self.terms[entry.index - 1 :]
                        self.terms.append(entry.term)
                    self._parsed = end
        return self.terms[index - 1] if 0 < index <= len(self.terms) else None


class Invariants:
    def __init__(self, disks: Mapping[str, SimDisk], wal_path: Callable[[str], Path],
                 clock: Callable[[], int], time: Callable[[], float]) -> None:  # fmt: skip
        self._durable = {n: _DurableLog(disk, wal_path(n)) for n, disk in disks.items()}
        self._quorum = majority(len(disks))
        self._clock = clock
        self._time = time
        self._max_applied = 0
        self.violations: dict[str, list[dict[str, Any]]] = {k: [] for k in DESCRIPTIONS}
        self.counts = dict.fromkeys(DESCRIPTIONS, 0)  # violations, including those not kept
        self.checked = dict.fromkeys(DESCRIPTIONS, 0)

    def _violation(self, kind: str, **facts: Any) -> None:
        self.counts[kind] += 1
        if len(self.violations[kind]) < MAX_VIOLATIONS:
            self.violations[kind].append(
                {**facts, "time": self._clock(), "at": round(self._time(), 6)})

    # -- the Observer ----------------------------------------------------------------------

    def applying(self, node: str, entries: Sequence[Entry]) -> None:
        durable = self._durable
        for e in entries:
            holders = [n for n, d in durable.items() if d.term(e.index) == e.term]
            self.checked["durable-before-apply"] += 1
            if len(holders) < self._quorum:
                self._violation("durable-before-apply", node=node, index=e.index, term=e.term,
                                durable_on=holders,
                                message=f"{node} applies entry {e.index} (term {e.term}) held "
                                        f"durably by {len(holders)} of {len(durable)} nodes "
                                        f"({', '.join(holders) or 'none'})")  # fmt: skip
        if entries and entries[-1].index > self._max_applied:
            self._max_applied = entries[-1].index

    def read_asked(self, node: str) -> object:
        return self._max_applied

    def read_served(self, node: str, token: object, applied: int) -> None:
        self.checked["read-sees-applied"] += 1
        needed = token if isinstance(token, int) else 0
        if applied < needed:
            self._violation("read-sees-applied", node=node, index=applied, needed=needed,
                            message=f"{node} serves a read at index {applied}, but index "
                                    f"{needed} was applied before the read reached it")  # fmt: skip

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

"""nodes/<node>/events.jsonl: the structured events of one node (DESIGN.md, "Node events").

One JSON object per line: `start` on every process start, `role` on every role change (with the
term), `apply` for every applied entry in order (`index`, `term`, `id` = "<client id>:<seq>" or
"noop", `"repeat": true` when the state machine recognised a repeated request and did not
execute it again, and `crc`, the CRC-32 of a command entry's bytes), `read` for every
read it answers (`asked`: when the read reached it, `term`: the term that confirmed it,
`index`: the applied index it answered at; checker/read_safety.py), `crash` (`point`) when
the node kills itself at an armed crash point (crashpoints.py), and the durability events of
durability.py: `recovered` (`term`, `vote`, `commit`, `last`: what a process life starts from;
`terms`: where each run of one term begins in its log, as [[index, term], ...]; `snapshot` and
`snapshot_term`: the snapshot it starts after, if any), `stored` (`first`, `last`, `terms`: the
log now holds entries `first`..`last` durably, replacing any from `first` on; flushed before
the acknowledgements that promise them leave), `persisted` (`term`, `vote`, `commit`: a new
term or vote is durable) and `invariant` (`rule` and its numbers: a broken invariant), and
`snapshot` (`index`, `term`, `digest` of the state machine, `kind`: "taken" or "installed").
`recovered`, `stored` and installed snapshots let the log-agreement checker follow each node's
durable log (checker/commit_safety.py).
Events are buffered by `emit` and written with one write by `flush`; the server flushes before
it answers any client whose request the events describe, so an acknowledged write is in the
events file before the client hears of it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from splitbrain.raft.host import OsFiles
from splitbrain.raft.messages import Entry

_REPEAT = ',"repeat":true'


class EventLog:
    """`clock` gives the wall-clock ns of each event (the machine's: machine_clock.py); `file`
    the open file to append to (the node's host decides: see host.py)."""

    def __init__(self, path: Path, *, clock: Callable[[], int] = time.time_ns,
                 file: IO[str] | None = None) -> None:  # fmt: skip
        self._file = OsFiles().append(path) if file is None else file
        self._clock = clock
        self._pending: list[str] = []

    def now(self) -> int:
        """This log's clock, ns (for a time an event gives besides its own, as `asked`)."""
        return self._clock()

    def emit(self, event: str, **fields: Any) -> None:
        record = {"time": self._clock(), "event": event, **fields}
        self._pending.append(json.dumps(record, separators=(",", ":")) + "\n")

    def apply(self, index: int, term: int, id: str, repeat: bool = False,
              crc: int | None = None) -> None:  # fmt: skip
        """`emit("apply", ...)` on the hot path: one per applied entry on every node. `crc`
        is the CRC-32 of the entry's bytes: nodes that apply one (term, id) with different
        contents (a damaged log) disagree on it."""
        tail = _REPEAT if repeat else ""
        if crc is not None:
            tail += f',"crc":{crc}'
        self._pending.append(
            f'{{"time":{self._clock()},"event":"apply","index":{index},"term":{term},'
            f'"id":{json.dumps(id)}{tail}}}\n'
        )

    def read(self, asked: int, term: int, index: int) -> None:
        """`emit("read", ...)` on the hot path: a read answered at applied `index`, confirmed in
        `term`, that reached the node at `asked` (this log's clock)."""
        self._pending.append(f'{{"time":{self._clock()},"event":"read","asked":{asked},'
                             f'"term":{term},"index":{index}}}\n')

    def flush(self) -> None:
        if self._pending:
            self._file.write("".join(self._pending))
            self._file.flush()
            self._pending.clear()

    def close(self) -> None:
        self.flush()
        self._file.close()


def term_runs(entries: Sequence[Entry]) -> list[list[int]]:
    """[[index, term], ...]: the index where each run of entries of one term begins (the
    `terms` of `stored` and `recovered` events)."""
    runs: list[list[int]] = []
    for e in entries:
        if not runs or runs[-1][1] != e.term:
            runs.append([e.index, e.term])
    return runs

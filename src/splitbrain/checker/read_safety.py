"""Read safety: a linearizable read is answered by the current leader, from a state that holds
every write applied before the read arrived.

A Raft node answers a read (ReadIndex, or a lease) only once it knows it still leads and knows
the commit index: a ReadIndex round confirms the term with a quorum heard after the read arrived
(a quorum that had elected a successor would have refused it), and a lease rests on a quorum
whose members vote for no one until it ends. So two rules hold for every read, checked on the
`read` events the nodes write when they answer (`asked`: when the read reached the node,
`term`: the term that confirmed it, `index`: the applied index it was answered at):

- `read-by-current-leader`: no node had been elected leader of a later term before the read
  arrived. A node that answers after its successor was elected serves a deposed leader's view,
  whether or not the successor has committed anything yet (the window linearizability needs).
- `read-sees-applied`: the read is answered at an index at least as high as every index some
  node had applied before the read arrived (a linearizable read cannot miss a write some node
  already applied).

Both compare times across nodes, as the nodes' event clocks give them (one clock on one machine,
or the simulator's), and only strictly: an election or an apply stamped at the very time the
read arrived is not "before" it. Each event time is taken after what it reports (a node learns
it leads, or that an entry committed, before it says so) and `asked` before the read is
registered, so a correct Raft never looks late. The nodes read the machine's clock past any
clock fault (raft/machine_clock.py); a run with clock faults whose nodes could not is not
checked (agreement.py). Memory: four numbers per read, in arrays.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Any

RULES = ("read-by-current-leader", "read-sees-applied")
_LIMIT = 1 << 63  # what the columns (signed 64 bits) hold


class ReadSafety:
    """Collects the elections and the reads answered while the events are read, then checks
    every read against them (`check`)."""

    def __init__(self) -> None:
        self._names: list[str] = []
        self._elected: list[tuple[int, int]] = []  # (time, term) of every `role` leader event
        self._node = array("q")  # per read: which node (into _names), asked, term, index
        self._asked = array("q")
        self._term = array("q")
        self._index = array("q")

    def node(self, name: str) -> int:
        self._names.append(name)
        return len(self._names) - 1

    def elected(self, time: Any, term: int) -> None:
        """A node became leader of `term` at `time` (a `role` event; one without a time says
        nothing of when)."""
        if type(time) is int:
            self._elected.append((time, term))

    def read(self, node: int, asked: Any, term: Any, index: Any) -> None:
        """A `read` event (ValueError names a bad field)."""
        for field, value in (("asked", asked), ("term", term), ("index", index)):
            if type(value) is not int:
                raise ValueError(f"field {field!r} must be an integer")
            if not -_LIMIT <= value < _LIMIT:
                raise ValueError(f"field {field!r} is beyond 64 bits")
        self._node.append(node)
        self._asked.append(asked)
        self._term.append(term)
        self._index.append(index)

    def check(self, frontier: Sequence[tuple[int, int]], report: Callable[..., None]) -> int:
        """Report every read that breaks a rule; `frontier` is (time, index) each time the
        highest index applied anywhere grew, in time order. Returns the reads checked."""
        elected = sorted(self._elected)
        times = [t for t, _ in elected]
        # [i]: (term, time) of the highest term among elected[:i + 1]
        highest = list(accumulate(((term, time) for time, term in elected), max))
        applied_times = [t for t, _ in frontier]
        for r, asked in enumerate(self._asked):
            node, term, index = self._names[self._node[r]], self._term[r], self._index[r]
            at = bisect.bisect_left(times, asked) - 1  # elected strictly before the read arrived
            if at >= 0 and highest[at][0] > term:
                later, when = highest[at]
                report("read-by-current-leader", f"{node} answered a read confirmed in term "
                       f"{term}, but a leader of term {later} had been elected "
                       f"{_ms(asked - when)} before the read reached it", node=node, term=term,
                       elected=later, index=index, time=asked)  # fmt: skip
            at = bisect.bisect_left(applied_times, asked) - 1
            if at >= 0 and frontier[at][1] > index:
                needed = frontier[at][1]
                report("read-sees-applied", f"{node} answered a read at index {index}, but "
                       f"index {needed} had been applied {_ms(asked - frontier[at][0])} before "
                       "the read reached it", node=node, term=term, index=index, needed=needed,
                       time=asked)  # fmt: skip
        return len(self._asked)


def _ms(ns: int) -> str:
    return f"{ns / 1e6:.3f} ms"

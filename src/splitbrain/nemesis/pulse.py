"""RequestPulse: the moment the latest client request was sent, for faults timed by requests.

The interpreter calls `note()` right before a client sends a request; a nemesis polls
`since(count)` to learn whether a request went out since it last looked, and how long ago. An
honest observable from outside the nodes: the history records the same invocation. Time is the
running event loop's (virtual in the simulator).
"""

from __future__ import annotations

import asyncio


class RequestPulse:
    def __init__(self) -> None:
        self.count = 0  # requests noted so far
        self._at = 0.0  # loop.time() of the latest

    def note(self) -> None:
        self.count += 1
        self._at = asyncio.get_running_loop().time()

    def since(self, count: int) -> float | None:
        """Seconds since the latest request if one was noted after the first `count`, else None."""
        if self.count <= count:
            return None
        return asyncio.get_running_loop().time() - self._at

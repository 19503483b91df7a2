"""RequestPulse: the moment the latest client request was sent, for faults timed by requests.

The interpreter calls `note()` right before a client sends a request; a nemesis polls
`since(count)` to learn whether a request went out since it last looked, and how long ago. An
honest observable from outside the nodes: the history records the same invocation.
"""

from __future__ import annotations

import time


class RequestPulse:
    def __init__(self) -> None:
        self.count = 0  # requests noted so far
        self._at = 0.0  # time.monotonic() of the latest

    def note(self) -> None:
        self.count += 1
        self._at = time.monotonic()

    def since(self, count: int) -> float | None:
        """Seconds since the latest request if one was noted after the first `count`, else None."""
        return time.monotonic() - self._at if self.count > count else None

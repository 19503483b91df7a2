"""Python's cycle collector paused while the checker builds millions of acyclic objects.

Reading a history makes a Call per operation, and reading node events a record per line; none
of them refer back to each other, yet every few hundred allocations the collector walks the
young ones and now and then all of them, which made reading and checking grow faster than the
history.
`paused()` switches it off for the duration and restores it (nesting is fine).
"""

from __future__ import annotations

import gc
from types import TracebackType


class _Paused:
    """A plain context manager: entered once per check, which for a small history takes
    microseconds (a generator-based one cost a few of them)."""

    __slots__ = ("enabled",)

    def __enter__(self) -> None:
        self.enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.enabled:
            gc.enable()


def paused() -> _Paused:
    return _Paused()

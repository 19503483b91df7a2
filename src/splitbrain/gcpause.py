"""Python's cycle collector paused while the checker builds millions of acyclic objects.

Reading a history makes a Call per operation and an Apply per node event; none of them refer
back to each other, yet every few hundred allocations the collector walks the young ones and
now and then all of them, which made reading and checking grow faster than the history.
`paused()` switches it off for the duration and restores it (nesting is fine).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()

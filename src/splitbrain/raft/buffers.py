"""What a node's connections may hold in memory, so that no client or stranger can exhaust it.

Rules it keeps (the limits are documented in docs/architecture.md, "Wire protocols"):
- Per connection: a frame may not announce more than its reader's limit (codec.py), so a
  partial frame is bounded; a client that does not read its replies has its reading paused
  (the transport's flow control), and is shed once `MAX_UNSENT` bytes of replies wait for it.
- Per node: every client connection and every peer connection not yet authenticated charges
  the bytes it holds (its partial frame, the frames it sent while paused, its unsent replies
  while paused) to one `BufferBudget`; the connection that takes the total over the cap is
  shed. Authenticated peers are members: their frames are bounded per connection only.
"""

from __future__ import annotations

NODE_CAP = 128 * 1024 * 1024  # bytes all budgeted connections of a node may hold together
MAX_UNSENT = 16 * 1024 * 1024  # bytes of replies a client may leave unread before it is shed


class BufferBudget:
    """Bytes held by connections, against a cap: `charge(old, new)` per change of one."""

    def __init__(self, cap: int = NODE_CAP) -> None:
        self.cap = cap
        self.used = 0

    def charge(self, old: int, new: int) -> bool:
        """A connection now holds `new` bytes instead of `old`; False if that takes the total
        over the cap (the caller sheds the connection and releases what it held)."""
        self.used += new - old
        return new <= old or self.used <= self.cap

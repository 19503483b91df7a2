"""LinkFaults: what a link proxy does to the messages of one directed link.

A value, shared by the nemesis (which plans it), the network (which sends it to the proxy
process) and the proxy (which applies it per whole message). Probabilities are in [0, 1] and
times are seconds; `from_json` rejects anything else with a message naming the field.

Two kinds of fault need to read a message's Raft header (its kind and term), so they are a
capability of the bundled Raft's wire format only (raft/codec.py `peek`, imported late so that
cluster/ imports without raft/):
- `kinds` aims every fault at some message kinds ("app-resp", "heartbeat", ...); the others pass
  untouched and unhindered;
- `hold_term` holds a message until one of a newer term has passed it on the same link (at most
  TERM_HOLD_MAX s): messages of an old term arrive after those of the new one.
A message that is not in our format (another target) matches no kind and carries no term.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

# A reordered message is held back this much longer than its neighbours so later ones overtake it.
REORDER_HOLD = 0.05
# A replayed message is delivered once more this many seconds later, drawn uniformly: late
# enough that the receiver has moved on (more entries, often a newer term).
REPLAY_AFTER = (0.1, 0.5)
# A message held for a term change is released after this long if no newer term comes.
TERM_HOLD_MAX = 1.0

_PROBABILITIES = ("drop", "duplicate", "reorder", "replay", "hold_term")


@dataclass(frozen=True, slots=True)
class LinkFaults:
    drop: float = 0.0  # probability that a message is discarded
    delay: float = 0.0  # seconds added to every message (order kept)
    jitter: float = 0.0  # extra seconds per message, uniform in [0, jitter) (order kept)
    duplicate: float = 0.0  # probability that a message is delivered twice
    reorder: float = 0.0  # probability that a message is held back REORDER_HOLD s extra
    replay: float = 0.0  # probability that a message is delivered again REPLAY_AFTER s later
    hold_term: float = 0.0  # probability that a message waits for one of a newer term to pass
    kinds: tuple[str, ...] = ()  # message kinds the faults act on (codec.MESSAGE_KINDS); () all

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "kinds":
                continue
            v = getattr(self, f.name)
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
                raise ValueError(f"link fault {f.name!r} must be a number, got {v!r}")
            probability = f.name in _PROBABILITIES
            if v < 0 or (probability and v > 1):
                limit = "in [0, 1]" if probability else ">= 0"
                raise ValueError(f"link fault {f.name!r} must be {limit}, got {v!r}")
        if not isinstance(self.kinds, tuple) or not all(isinstance(k, str) for k in self.kinds):
            raise ValueError(f"link fault 'kinds' must be a list of names, got {self.kinds!r}")
        if self.kinds:
            from splitbrain.raft.codec import MESSAGE_KINDS  # late: only kind filters need raft

            unknown = [k for k in self.kinds if k not in MESSAGE_KINDS]
            if unknown:
                raise ValueError(f"unknown message kind {unknown[0]!r} "
                                 f"(known: {', '.join(MESSAGE_KINDS)})")

    def active(self) -> bool:
        """Does this change anything at all? (An inactive link takes the fast path.)"""
        return any(getattr(self, name) for name in _ACTING)

    def reads_headers(self) -> bool:
        """Must the proxy read each message's kind and term?"""
        return bool(self.kinds or self.hold_term)

    def to_json(self) -> dict[str, Any]:
        """Only the fields that are set, so a history line says what was done and nothing else."""
        out: dict[str, Any] = {k: v for k, v in asdict(self).items() if v}
        if self.kinds:
            out["kinds"] = list(self.kinds)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LinkFaults:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            names = ", ".join(sorted(known))
            raise ValueError(f"unknown link fault {unknown[0]!r} (known: {names})")
        if isinstance(data.get("kinds"), list):
            data = {**data, "kinds": tuple(data["kinds"])}
        return cls(**data)


# The fields that act on messages (every one but the kind filter): active() reads them per chunk.
_ACTING = tuple(f.name for f in fields(LinkFaults) if f.name != "kinds")

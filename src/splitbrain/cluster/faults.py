"""LinkFaults: what a link proxy does to the messages of one directed link.

A value, shared by the nemesis (which plans it), the network (which sends it to the proxy
process) and the proxy (which applies it per whole message). Probabilities are in [0, 1] and
times are seconds; `from_json` rejects anything else with a message naming the field.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

# A reordered message is held back this much longer than its neighbours so later ones overtake it.
REORDER_HOLD = 0.05


@dataclass(frozen=True, slots=True)
class LinkFaults:
    drop: float = 0.0  # probability that a message is discarded
    delay: float = 0.0  # seconds added to every message (order kept)
    jitter: float = 0.0  # extra seconds per message, uniform in [0, jitter) (order kept)
    duplicate: float = 0.0  # probability that a message is delivered twice
    reorder: float = 0.0  # probability that a message is held back REORDER_HOLD s extra

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
                raise ValueError(f"link fault {f.name!r} must be a number, got {v!r}")
            probability = f.name in ("drop", "duplicate", "reorder")
            if v < 0 or (probability and v > 1):
                limit = "in [0, 1]" if probability else ">= 0"
                raise ValueError(f"link fault {f.name!r} must be {limit}, got {v!r}")

    def active(self) -> bool:
        """Does this change anything at all? (An inactive link takes the fast path.)"""
        return any(getattr(self, f.name) for f in fields(self))

    def to_json(self) -> dict[str, float]:
        """Only the fields that are set, so a history line says what was done and nothing else."""
        return {k: v for k, v in asdict(self).items() if v}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LinkFaults:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            names = ", ".join(sorted(known))
            raise ValueError(f"unknown link fault {unknown[0]!r} (known: {names})")
        return cls(**data)

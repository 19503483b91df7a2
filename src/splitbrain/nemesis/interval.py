"""The nemesis interval: the unit of time of a fault schedule, and the shortest one it takes.

Imports nothing: targets/ and cluster/ check an interval without importing schedule.py, which
imports raft/ (crash points, quorum sizes).
"""

from __future__ import annotations

# Schedule times are whole milliseconds (schedule._round), and a fault takes milliseconds to
# apply; below 2 ms a rest of half an interval rounded to nothing and planning never ended
# (`--nemesis-interval 0.0001` hung the run).
MIN_INTERVAL = 0.01


def interval_problem(interval: float) -> str | None:
    """Why `interval` cannot be a schedule's unit of time (seconds), or None."""
    if not MIN_INTERVAL <= interval < float("inf"):
        return f"must be at least {MIN_INTERVAL:g} seconds and finite, got {interval:g}"
    return None

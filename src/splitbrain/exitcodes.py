"""Exit codes of `run` and `check` (DESIGN.md) and how verdicts merge."""

from __future__ import annotations

from typing import Literal

Verdict = bool | Literal["unknown"]

VALID = 0
INVALID = 1
UNKNOWN = 2
COULD_NOT_RUN = 3
USAGE = 64


def merge(verdicts: list[Verdict]) -> Verdict:
    """Invalid outranks unknown, unknown outranks valid; nothing to merge is valid."""
    if any(v is False for v in verdicts):
        return False
    if any(v == "unknown" for v in verdicts):
        return "unknown"
    return True


def exit_code(verdict: Verdict) -> int:
    if verdict is True:
        return VALID
    if verdict is False:
        return INVALID
    return UNKNOWN


class UsageError(Exception):
    """Bad command-line usage that argparse cannot see (a bad combination, a missing file); 64."""

"""argparse types shared by the commands: numbers that must be finite, and at least zero, above
zero, or a share from 0 to 1. `nan` and `inf` parse as floats; as a time limit or an interval
they would mean a run that never ends or a schedule that never fires, so they are refused as bad
usage (exit 64) before anything starts."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number(kind: type, text: str) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return value  # type: ignore[no-any-return]


def non_negative(kind: type) -> Callable[[str], int | float]:
    """A finite `kind` (int or float) >= 0."""

    def parse(text: str) -> int | float:
        value = _number(kind, text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must not be negative: {text}")
        return value

    return parse


def positive(kind: type) -> Callable[[str], int | float]:
    """A finite `kind` (int or float) > 0."""

    def parse(text: str) -> int | float:
        value = _number(kind, text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0: {text}")
        return value

    return parse


def share(text: str) -> float:
    """A finite float from 0 to 1."""
    value = float(_number(float, text))
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1: {text}")
    return value

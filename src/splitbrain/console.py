"""The consoles `run` and `sim` print progress and verdicts through.

On a terminal rich wraps lines to its width and draws the live progress line. In a log (CI,
a pipe, a file) nothing is wrapped or folded: a run directory, a report path or a reproduce
command stays on one line, whole, for copying and for grep, however long it is.
"""

from __future__ import annotations

from rich.console import Console


def log_console(*, stderr: bool = False) -> Console:
    """A console for stdout (or stderr) that soft-wraps unless it is a terminal."""
    console = Console(stderr=stderr, highlight=False)
    console.soft_wrap = not console.is_terminal
    return console

"""The one error type for bad history input: it names the file, the line and the problem."""

from __future__ import annotations


class HistoryError(ValueError):
    """A history file is malformed. `str()` is `file:line: problem`, ready to print on one line."""

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {problem}")

"""The self-contained HTML report of a run and the runs index.

    write_report(run, results=None) -> str | None   report.html; never raises; a warning or None
    render_report(run, results=None) -> Path        the same, recording a warning in results.json
    write_index(base) -> Path                       base/index.html listing every run under base

A rendering failure never changes a verdict: the caller adds the warning to results.json.
"""

from splitbrain.reports.index import write_index
from splitbrain.reports.report import render_report, write_report

__all__ = ["render_report", "write_index", "write_report"]

"""`splitbrain report RUN_DIR`: re-render a stored run's report.html and its runs index.

The exit code is the run's verdict, as `check` gives it (0 valid, 1 invalid, 2 unknown — also
when the run was never checked), or 3 when RUN_DIR is not a usable run directory. A rendering
failure is printed and added to results.json's "warnings"; it never changes the exit code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from splitbrain.exitcodes import COULD_NOT_RUN, UNKNOWN, exit_code
from splitbrain.reports.index import write_index
from splitbrain.reports.report import add_warning, write_report
from splitbrain.store import RunDir, find_runs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR",
                        help="a run directory (runs/<name>/<timestamp>, or runs/latest)")
    parser.add_argument("--no-index", action="store_true",
                        help="do not update the runs index (runs/index.html)")


def runs_base(run: RunDir) -> Path | None:
    """The runs/ directory holding this run (runs/<name>/<timestamp>), if it is in one."""
    base = run.path.resolve().parent.parent
    return base if any(r.path.resolve() == run.path.resolve() for r in find_runs(base)) else None


def run(args: argparse.Namespace) -> int:
    run_dir = RunDir(Path(args.run_dir))
    if not run_dir.is_run():
        print(f"splitbrain report: {run_dir.path}: not a run directory (no history.jsonl)",
              file=sys.stderr)
        return COULD_NOT_RUN
    results = None
    if run_dir.results.is_file():
        try:
            results = run_dir.read_json(run_dir.results)
        except (OSError, ValueError) as exc:
            print(f"splitbrain report: {run_dir.results}: cannot be read: {exc}", file=sys.stderr)
            return COULD_NOT_RUN
        if not isinstance(results, dict):
            print(f"splitbrain report: {run_dir.results}: not a JSON object", file=sys.stderr)
            return COULD_NOT_RUN
    warning = write_report(run_dir, results)
    if warning is not None:
        print(f"splitbrain report: warning: {warning}", file=sys.stderr)
        add_warning(run_dir, warning)
    else:
        print(run_dir.report)
    base = None if args.no_index else runs_base(run_dir)
    if base is not None:
        try:
            print(write_index(base))
        except Exception as exc:  # the index is a convenience; it must not change the verdict
            print(f"splitbrain report: warning: index not written: {exc}", file=sys.stderr)
    if results is None:
        print("splitbrain report: no results.json: the run was never checked", file=sys.stderr)
        return UNKNOWN
    return exit_code(results.get("valid") if results.get("valid") in (True, False) else "unknown")

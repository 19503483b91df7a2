"""`splitbrain campaign [MATRIX.toml]`: seeds × nemesis mixes × workloads (× modes, targets, any
axis) as Dask tasks, gathered into one campaign directory with one exit code for CI.

Exit code (DESIGN.md): 1 if any run is invalid, else 2 if any is unknown, else 3 if any could
not run (or never ran: an interrupted campaign), else 0; 64 for a matrix that cannot run. Every
distinct set of run arguments is checked by the run command's own parser before anything
starts, so a typo is one usage error, not a campaign of failed runs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from splitbrain.campaign.directory import CampaignDir, Plan, create_campaign, find_campaign
from splitbrain.campaign.driver import Options, execute_all, local_workers, where
from splitbrain.campaign.matrix import Matrix, MatrixError, RunSpec, from_toml, with_overrides
from splitbrain.campaign.outcome import RunOutcome
from splitbrain.campaign.summary import campaign_json, rows
from splitbrain.campaign.task import Launcher
from splitbrain.exitcodes import COULD_NOT_RUN, UsageError
from splitbrain.store import RunDir

AXIS_FLAGS = ("nemesis", "workload", "target", "unsafe")  # repeatable flags that are axes
NOT_RUNS = ("campaign", "check", "report", "serve", "node")  # commands that are no kind of run


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("matrix", nargs="?", metavar="MATRIX.toml",
                   help="the matrix (name, seeds, time-limit, mode, [matrix] axes, [args]); "
                        "flags below replace what it says")
    p.add_argument("--seeds", metavar="N|A-B|A,B,..",
                   help="seeds of every configuration: a count (1..N), a range or a list (1)")
    p.add_argument("--nemesis", action="append", default=[], metavar="MIX",
                   help="a nemesis mix, e.g. partition or kill,pause (repeatable: an axis)")
    p.add_argument("--workload", action="append", default=[], help="a workload (repeatable)")
    p.add_argument("--target", action="append", default=[],
                   help="a target, where run takes --target (repeatable)")
    p.add_argument("--unsafe", action="append", default=[], metavar="FLAG",
                   help="a deliberately unsafe variant; an empty value runs without one "
                        "(repeatable: --unsafe= --unsafe stale-reads)")
    p.add_argument("--mode", action="append", default=[], metavar="COMMAND",
                   help="the command each run is: run (default) or sim "
                        "(repeatable: an axis)")
    p.add_argument("--time-limit", type=float, metavar="S",
                   help="seconds of clients and faults per run (30)")
    p.add_argument("--run-arg", action="append", default=[], metavar="ARG",
                   help="an argument for every run, e.g. --run-arg=--nodes=3 (repeatable)")
    p.add_argument("--name", help="campaign name (default: the matrix file's name, or "
                                  "'campaign')")
    p.add_argument("--out", default="campaigns", metavar="DIR",
                   help="campaigns go to DIR/NAME/<UTC timestamp>/ (%(default)s)")
    p.add_argument("--resume", nargs="?", const="", metavar="DIR",
                   help="finish an interrupted campaign (DIR, default OUT/latest): runs "
                        "with a verdict are not repeated")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run on this Dask scheduler's workers instead of a local cluster")
    p.add_argument("--workers", type=int, metavar="N",
                   help=f"local workers, i.e. runs at once (one per core: {local_workers()})")
    p.add_argument("--transfer", choices=("auto", "dask"), default="auto",
                   help="how run files come back: auto writes in place when the worker "
                        "shares this filesystem, dask always sends them through Dask")
    p.add_argument("--keep-nodes", action="store_true",
                   help="keep node files (logs, events, data) of valid runs too")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML: one testcase per run")
    p.add_argument("--summary", metavar="FILE", help="write a markdown summary for CI")


def matrix_from_args(args: argparse.Namespace) -> Matrix:
    try:
        matrix = from_toml(args.matrix) if args.matrix else Matrix()
        return with_overrides(
            matrix, name=args.name, seeds=args.seeds, time_limit=args.time_limit,
            modes=args.mode, axes=[(a, getattr(args, a)) for a in AXIS_FLAGS],
            args=args.run_arg)
    except MatrixError as exc:
        raise UsageError(str(exc)) from None


def check_runs(specs: Sequence[RunSpec]) -> None:
    """Parse each distinct run command line as the run command would; UsageError if one fails.

    Uses the command's own parser and, when the command module has one, its
    `config_from_args` (which checks what the parser cannot: nemesis mixes, sizes)."""
    from splitbrain.cli import COMMANDS, build_parser

    checked: set[tuple[str, tuple[str, ...]]] = set()
    for spec in specs:
        if (spec.mode, spec.args) in checked:
            continue
        checked.add((spec.mode, spec.args))
        if spec.mode not in COMMANDS or spec.mode in NOT_RUNS:
            raise UsageError(f"mode {spec.mode!r} is not a kind of run")
        argv = spec.argv("OUT", "NAME")
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                parsed = build_parser(argv).parse_args(argv)
            module = importlib.import_module(COMMANDS[spec.mode][0])
            if hasattr(module, "config_from_args"):
                module.config_from_args(parsed)
        except SystemExit:
            said = err.getvalue().strip().splitlines()
            raise UsageError(f"{spec.configuration}: {said[-1] if said else 'bad arguments'}"
                             ) from None
        except UsageError as exc:
            raise UsageError(f"{spec.configuration}: {exc}") from None


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops the campaign like Ctrl-C: runs under way are stopped, the rest not run."""
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_campaign(cdir: CampaignDir, options: Options, *, launcher: Launcher | None = None,
                 say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run what the campaign's plan has not finished; write campaign.json and campaign.html.

    Runs with a verdict (valid, invalid, unknown) are not repeated; those that could not run
    are tried again. Returns campaign.json's content.
    """
    from splitbrain.campaign.pages import write_campaign_html

    plan = cdir.read_plan()
    name, specs = plan.name, plan.specs
    finished = {k for k, o in cdir.read_outcomes().items() if o.verdict != "could not run"}
    pending = [s for s in specs if s.id not in finished]
    for spec in pending:
        cdir.clear_run(spec.id)
    say(f"campaign {name}: {len(specs)} runs, {len(pending)} to go, on {where(options)}"
        f"\n  {cdir.path}")
    done = len(specs) - len(pending)

    def record(outcome: RunOutcome) -> None:
        nonlocal done
        cdir.record(outcome)
        done += 1
        detail = f" - {outcome.cause}" if outcome.cause else ""
        say(f"[{done}/{len(specs)}] {outcome.verdict}: {outcome.configuration} "
            f"seed {outcome.seed} ({outcome.duration_s:.1f} s){detail}")

    complete = True
    try:
        with _sigterm_interrupts():
            execute_all(cdir, pending, options, record, launcher)
    except KeyboardInterrupt:
        complete = False
        say("interrupted: runs under way were stopped; finish with "
            f"`splitbrain campaign --resume {cdir.path}`")
    except (OSError, TimeoutError) as exc:  # no scheduler at that address, a lost connection
        complete = False
        say(f"could not run the campaign on {where(options)}: {type(exc).__name__}: {exc}")
    doc = campaign_json(name, rows(specs, cdir.read_outcomes()),
                        started=plan.started,
                        finished=_now() if complete else None, where=where(options))
    RunDir(cdir.path).write_json(cdir.json, doc)
    write_campaign_html(cdir, doc)
    return doc


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _open_campaign(args: argparse.Namespace) -> CampaignDir:
    """The campaign to run: a new one from the matrix, or the one --resume names."""
    given = bool(args.matrix or args.seeds or args.time_limit or args.mode or args.run_arg
                 or any(getattr(args, a) for a in AXIS_FLAGS))
    if args.resume is not None:
        cdir = find_campaign(args.resume or args.out)
        if cdir is None:
            raise UsageError(f"no campaign to resume in {args.resume or args.out} "
                             "(no plan.json there or in its latest/)")
        if given:
            specs = matrix_from_args(args).expand()
            if [s.to_json() for s in specs] != [s.to_json() for s in cdir.read_plan().specs]:
                raise UsageError(f"the matrix given differs from the plan of {cdir.path}; "
                                 "resume without a matrix to finish that plan")
        return cdir
    matrix = matrix_from_args(args)
    specs = matrix.expand()
    check_runs(specs)
    try:
        cdir = create_campaign(args.out, matrix.name)
    except OSError as exc:
        raise UsageError(f"cannot create the campaign directory in {args.out}: {exc}") from None
    cdir.write_plan(Plan(matrix.name, specs, {
        "seeds": list(matrix.seeds), "axes": {k: list(v) for k, v in matrix.axes},
        "modes": list(matrix.modes), "args": list(matrix.args), "time_limit": matrix.time_limit},
        _now()))
    return cdir


def run(args: argparse.Namespace) -> int:
    from splitbrain.campaign.ci import write_junit, write_summary

    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.scheduler and args.workers is not None:
        raise UsageError("--workers sizes a local cluster; an existing one (--scheduler) is "
                         "sized by its workers")
    cdir = _open_campaign(args)
    options = Options(scheduler=args.scheduler, workers=args.workers, transfer=args.transfer,
                      keep_nodes=args.keep_nodes)
    doc = run_campaign(cdir, options)
    for path, write in ((args.junit, write_junit), (args.summary, write_summary)):
        if path:
            try:
                write(Path(path), doc, cdir)
            except OSError as exc:
                print(f"splitbrain campaign: cannot write {path}: {exc}", file=sys.stderr)
                return COULD_NOT_RUN
    counts = doc["counts"]
    print(f"campaign {doc['name']}: " + ", ".join(f"{n} {v}" for v, n in counts.items() if n)
          + f"; exit {doc['exit_code']}\n  report: {cdir.html}")
    return int(doc["exit_code"])

"""The `splitbrain` command: a registry of subcommands, each in its own module.

Each command module provides `add_arguments(parser)` and `run(args) -> int` (an exit code per
DESIGN.md: 0 valid, 1 invalid, 2 unknown, 3 could not run, 64 bad usage). Modules are imported
only when their command runs, so `splitbrain check` never pays for the cluster code.

A command module may set `EXIT_AT_ONCE = True`: its work is over when run() returns (no
process, thread or file left to it), so the `splitbrain` program then ends with os._exit after
flushing its output, skipping the interpreter's teardown, which would free every object of a
large history one by one (a fifth of the CPU of checking a 100k-call file). Only the program
does this: `main(argv)` called with arguments (tests, other Python) always returns.

Rules it keeps: 1 means INVALID and nothing else, so an unexpected exception in any command is
exit 3 with one line naming the error and a file holding its traceback (a crash must never look
like a consistency violation to a CI gate); Ctrl-C is 3 too. Text that cannot be encoded for
the terminal (a lone surrogate from a history, a file name in another encoding) is printed
escaped rather than crashing the printing. Output whose reader went away (`splitbrain sim
--seeds 1000 | head`) stops the command with one line and exit 3: no traceback, since nothing
inside splitbrain failed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence

from splitbrain import __version__
from splitbrain.exitcodes import COULD_NOT_RUN, USAGE, UsageError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("splitbrain.run", "start a cluster, run clients and faults, check and report"),
    "sim": ("splitbrain.sim.command", "the same run in a deterministic simulation, seed by seed"),
    "check": ("splitbrain.checker.command", "check histories or run directories"),
    "report": ("splitbrain.reports.command", "re-render the HTML report of a stored run"),
    "campaign": ("splitbrain.campaign.command",
                 "run a matrix of seeds, fault mixes and workloads on Dask; one exit code"),
    "serve": ("splitbrain.reports.serve", "serve the runs index and reports on 127.0.0.1"),
    "node": ("splitbrain.raft.command", "run one node of the bundled Raft key-value server"),
    "clean": ("splitbrain.cluster.clean",
              "remove network namespaces left by netns runs whose driver is gone"),
}


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage; DESIGN.md reserves 2 for 'unknown', so use 64."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(USAGE)


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The parser; only the requested command's module is imported to add its options."""
    requested = next((a for a in argv if not a.startswith("-")), None)
    parser = _Parser(prog="splitbrain", description="Jepsen-style chaos testing for Raft.")
    parser.add_argument("--version", action="version", version=f"splitbrain {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == requested:
            importlib.import_module(module_name).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):  # not a TextIOWrapper
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    program = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return USAGE
    try:
        module = importlib.import_module(COMMANDS[args.command][0])
        code = int(module.run(args))
        if program and getattr(module, "EXIT_AT_ONCE", False):
            _exit_at_once(code)
        return code
    except UsageError as exc:
        print(f"splitbrain {args.command}: error: {exc}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        print(f"splitbrain {args.command}: interrupted", file=sys.stderr)
        return COULD_NOT_RUN
    except BrokenPipeError:
        _discard_stdout()
        print(f"splitbrain {args.command}: stopped: its output was closed (broken pipe)",
              file=sys.stderr)
        return COULD_NOT_RUN
    except Exception as exc:
        return crashed(args.command, exc)


def _discard_stdout() -> None:
    """Point stdout at /dev/null: the interpreter flushes it at exit, and a flush into the closed
    pipe would raise again (the Python documentation's advice for SIGPIPE)."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _exit_at_once(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def crashed(command: str, exc: Exception) -> int:
    """Exit 3 with one line and the traceback in a file (stderr if even that fails)."""
    import tempfile  # only after a crash: every command starts without them
    import traceback

    detail = traceback.format_exc()
    try:
        with tempfile.NamedTemporaryFile(
            "w", prefix=f"splitbrain-{command}-", suffix=".traceback.txt", delete=False
        ) as f:
            f.write(detail)
        where = f"traceback in {f.name}"
    except OSError:
        print(detail, file=sys.stderr, end="")
        where = "traceback above"
    print(f"splitbrain {command}: internal error: {type(exc).__name__}: {exc} ({where})",
          file=sys.stderr, flush=True)
    return COULD_NOT_RUN

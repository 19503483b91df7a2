"""`splitbrain check PATH...`: check history files, directories of them, and run directories.

A file in any supported format (history.jsonl, Jepsen EDN, Porcupine etcd log) gets the
linearizability checker. A run directory (one holding history.jsonl) gets every checker —
linearizability with the model its config.json's workload implies, log agreement over
nodes/*/events.jsonl, stats — and its results.json is (re)written; a checker that needs what
the run's target lacks (config.json "target_capabilities") is "not-run" with a reason, named in
the verdict line and never counted as valid. Any other directory is walked for both. One
verdict line per file (and its warnings, e.g. a torn last line), a summary, and the exit code
of the worst verdict: invalid (1) outranks could-not-check (3), which outranks unknown (2),
then valid (0). A history in which no operation, or no read, succeeded proves nothing: it is
unknown, never valid. Only regular files are opened (a FIFO or a device is "could not read",
never waited on).
"""

from __future__ import annotations

import argparse
import json
import stat
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from splitbrain.arguments import positive
from splitbrain.checker.linearizable import (
    DEFAULT_MEMORY_LIMIT,
    ModelError,
    check,
    knossos_reads,
)
from splitbrain.checker.models import MODELS
from splitbrain.exitcodes import COULD_NOT_RUN, INVALID, UNKNOWN, VALID, UsageError, merge
from splitbrain.history import Call, HistoryError
from splitbrain.history.formats import SUFFIXES, load_calls
from splitbrain.history.stream import read_calls
from splitbrain.store import RunDir

NOT_RUN = "not-run"  # a checker's "valid" when the target lacks what it needs
EXIT_AT_ONCE = True  # nothing is left to tear down when run() returns (cli.py)
# The history file checked last, held to the end: the program then exits at once rather than
# free it object by object. One at a time: checking a file lets the previous one go.
_held: list[Any] = []
_SEVERITY = {VALID: 0, UNKNOWN: 1, COULD_NOT_RUN: 2, INVALID: 3}
_UNSET: Any = object()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="history files (jsonl, Jepsen EDN, Porcupine etcd log), run "
                             "directories, or directories holding either")
    parser.add_argument("--model", choices=sorted(MODELS),
                        help="model to check against (default: from the run's workload, or "
                             "from the functions in the history)")
    parser.add_argument("--initial", metavar="JSON",
                        help="initial value of every key, as JSON (default: the model's: null "
                             'for registers, "" for kv); Jepsen CAS-register histories start at 0')
    parser.add_argument("--fail-means-no-effect", action="store_true",
                        help="treat every fail as 'did not happen' (Knossos); by default a failed "
                             "cas observes that the value differed (etcd/Porcupine). For Jepsen "
                             "EDN histories also Knossos's reads: an ok read of nil matches any "
                             "value")
    parser.add_argument("--time-limit", type=positive(float), metavar="SECONDS",
                        help="give up on a history after this long: verdict unknown")
    parser.add_argument("--memory-limit", type=int, metavar="MIB",
                        default=DEFAULT_MEMORY_LIMIT >> 20,
                        help="bound on what the search holds (visited nodes, interned states) "
                             "per history (default %(default)s MiB)")
    parser.add_argument("--shrink", action="store_true",
                        help="for an invalid history, find the fewest calls of the failing key "
                             "that are still invalid (delta debugging); a run's report shows "
                             "them first")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def check_run(run: RunDir, *, time_limit: float | None = None,
              options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run every checker on a run directory, write its results.json, and return it.

    Works on a run whose driver was killed (torn last line, open invokes, torn node event
    files). Raises HistoryError if history.jsonl is malformed beyond a torn last line.
    `options` may carry model, initial, fail_means_no_effect and memory_limit overrides.
    """
    from splitbrain.checker.agreement import check_agreement  # run dirs only
    from splitbrain.checker.restarts import check_restarts
    from splitbrain.checker.stats import stats

    started = time.perf_counter()
    options = run_options(run, options)
    history = read_calls(run.history)
    calls = history.calls
    warnings = list(history.warnings)
    config = _config(run)
    linear = _guard(lambda: _linearizable(calls, time_limit, options))

    # Clock faults skew the event times of a node that stamps them with its own clock.
    skewed = any(op.f == "start-clock" for op in history.nemesis)

    def agreement_() -> dict[str, Any]:
        files = [(node, run.node_events(node)) for node in run.node_names()
                 if run.node_events(node).is_file()]
        try:
            result = check_agreement(files, calls, cluster=len(run.node_names()) or None,
                                     clock_faults=skewed)
        except HistoryError as exc:
            return {"valid": "unknown", "cause": str(exc), "violations": [], "leaders": {}}
        warnings.extend(result.pop("warnings"))
        return result

    capabilities = config.get("target_capabilities")
    if isinstance(capabilities, list) and "events" not in capabilities:
        name = config.get("target_name") or config.get("target")
        agreement = {"valid": NOT_RUN,
                     "reason": f"target {name} writes no node events (events.jsonl)"}
    else:
        agreement = _guard(agreement_)
    checkers = {"linearizable": linear, "log-agreement": agreement,
                "stats": _guard(lambda: stats(calls, history.nemesis)),
                "restarts": _guard(lambda: check_restarts(history.nemesis)),
                **_recorded_invariants(run)}
    results = compose(checkers, warnings, time.perf_counter() - started)
    run.write_json(run.results, results)
    return results


def _recorded_invariants(run: RunDir) -> dict[str, dict[str, Any]]:
    """The invariants a simulation checked while it ran (invariants.json, sim runs only),
    each a checker result of its own."""
    if not run.invariants.is_file():
        return {}
    try:
        data = run.read_json(run.invariants)
    except (OSError, ValueError) as exc:
        return {"sim-invariants": {"valid": "unknown", "cause": f"invariants.json: {exc}"}}
    if not isinstance(data, dict) or not all(
            isinstance(r, dict) and r.get("valid") in (True, False) for r in data.values()):
        return {"sim-invariants": {"valid": "unknown", "cause": "invariants.json is malformed"}}
    return data


def run_options(run: RunDir, options: dict[str, Any] | None) -> dict[str, Any]:
    """The checker options for a run: the model and initial value its workload implies,
    unless `options` say otherwise."""
    from splitbrain.workloads.registry import WORKLOADS  # run dirs only

    options = dict(options or {})
    if options.get("model") is None:
        workload = _config(run).get("workload")
        if workload in WORKLOADS:
            options["model"] = WORKLOADS[workload].model
            options.setdefault("initial", WORKLOADS[workload].initial)
    return options


def _guard(checker: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A checker that crashes gives "unknown" with the error, never a verdict (Jepsen's rule).

    Bad input (HistoryError) is not a crash: it propagates to be reported as such.
    """
    try:
        return checker()
    except HistoryError:
        raise
    except Exception as exc:
        return {"valid": "unknown", "cause": f"checker crashed: {type(exc).__name__}: {exc}"}


def compose(checkers: dict[str, dict[str, Any]], warnings: list[str], seconds: float
            ) -> dict[str, Any]:
    """results.json from the checkers' results: invalid outranks unknown outranks valid; a
    checker that was not run does not count."""
    valid = merge([c["valid"] for c in checkers.values() if c["valid"] != NOT_RUN])
    results: dict[str, Any] = {"valid": valid}
    if valid is not True:
        results["cause"] = next(f"{name}: {c.get('cause')}" for name, c in checkers.items()
                                if c["valid"] == valid)
    results.update({"checkers": checkers, "warnings": warnings,
                    "check_time_s": round(seconds, 6)})
    return results


def _linearizable(calls: list, time_limit: float | None, options: dict[str, Any]) -> dict:
    kwargs: dict[str, Any] = {
        "fail_means_no_effect": options.get("fail_means_no_effect", False),
        "time_limit": time_limit,
        "memory_limit": options.get("memory_limit", DEFAULT_MEMORY_LIMIT),
    }
    if options.get("initial", _UNSET) is not _UNSET:
        kwargs["initial"] = options["initial"]
    try:
        result = check(calls, options.get("model"), **kwargs)
    except ModelError as exc:
        return {"valid": "unknown", "cause": str(exc)}
    if result["valid"] is True:
        why = _proves_nothing(calls, MODELS[result["model"]], kwargs["fail_means_no_effect"])
        if why:
            result.update(valid="unknown", cause=why)
    return result


def _proves_nothing(calls: list[Call], model: Any, fail_means_no_effect: bool) -> str | None:
    """Why a valid verdict would mean nothing: no operation, or no observation, succeeded (a
    run whose clients all timed out, or that only wrote, cannot show a violation)."""
    observing = model.reads | model.observing_fails
    succeeded = 0
    for c in calls:  # stops at the first observation: a valid history has one at its start
        if c.type == "ok" or (c.succeeded and not fail_means_no_effect):
            if c.f in observing:
                return None
            succeeded += 1
    if not succeeded:
        return f"no operation succeeded ({len(calls)} calls): nothing could be checked"
    return (f"no read succeeded ({succeeded} writes did): writes alone cannot show "
            "a violation")


def _config(run: RunDir) -> dict[str, Any]:
    try:
        config = run.read_json(run.config)
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


# --- the command --------------------------------------------------------------------------


def _targets(paths: list[str]) -> Iterator[Path]:
    """Files and run directories to check, in a stable order."""
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UsageError(f"no such file or directory: {raw}")
        if path.is_dir() and not RunDir(path).is_run():
            yield from _walk(path)
        else:
            yield path  # a file of any kind: _check_one refuses what is not a regular file


def _walk(directory: Path) -> Iterator[Path]:
    for child in sorted(directory.iterdir(), key=lambda p: p.name):
        if child.is_symlink():
            continue  # runs/latest and friends: already reached through the real path
        if child.is_dir():
            if RunDir(child).is_run():
                yield child
            else:
                yield from _walk(child)
        elif child.suffix in SUFFIXES and child.name != "events.jsonl":
            yield child


_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def _check_one(path: Path, args: argparse.Namespace, options: dict[str, Any]) -> dict[str, Any]:
    if path.is_dir():
        run = RunDir(path)
        results = check_run(run, time_limit=args.time_limit, options=options)
        linear = results["checkers"].get("linearizable")
        if args.shrink and _shrink_into(linear, lambda: read_calls(run.history).calls,
                                        run_options(run, options)):
            from splitbrain.reports import render_report

            run.write_json(run.results, results)
            render_report(run, results)  # it shows the minimal failing set first
        return results
    mode = path.stat().st_mode  # never open a FIFO or a device: reading one may never end
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise HistoryError(str(path), None, f"not a history file: {kind}")
    _held.clear()
    history = load_calls(path)
    _held.append(history)
    calls = history.calls
    knossos = history.format == "jepsen-edn" and options["fail_means_no_effect"]
    if knossos:
        calls = knossos_reads(calls)
    result = _linearizable(calls, args.time_limit, options)
    if knossos:
        result["semantics"] = (f"Knossos: every fail had no effect; an ok read of nil matches "
                               f"any value ({len(history.calls) - len(calls)} such reads)")
    if args.shrink:
        _shrink_into(result, lambda: calls, options)
    if history.warnings:
        result["warnings"] = list(history.warnings)
    return result


def _shrink_into(linear: dict[str, Any] | None, calls: Callable[[], list],
                 options: dict[str, Any]) -> bool:
    """Add `shrunk` (the minimal failing set) to an invalid linearizability result."""
    from splitbrain.checker.shrink import shrink

    failure = linear.get("failure") if linear else None
    if not linear or linear.get("valid") is not False or not isinstance(failure, dict):
        return False
    kwargs: dict[str, Any] = {"fail_means_no_effect": options.get("fail_means_no_effect", False)}
    if options.get("initial", _UNSET) is not _UNSET:
        kwargs["initial"] = options["initial"]
    try:
        linear["shrunk"] = shrink(calls(), linear.get("model"), key=failure.get("key"),
                                  **kwargs).to_json()
    except ValueError:  # not invalid on its own (a result from elsewhere): nothing to shrink
        return False
    return True


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"model": args.model,
                               "fail_means_no_effect": args.fail_means_no_effect,
                               "memory_limit": args.memory_limit << 20}
    if args.initial is not None:
        try:
            options["initial"] = json.loads(args.initial)
        except json.JSONDecodeError:
            options["initial"] = args.initial  # a bare word: the string itself
    if args.memory_limit <= 0:
        raise UsageError("--memory-limit must be positive")
    return options


def run(args: argparse.Namespace) -> int:
    options = _options(args)
    targets = list(_targets(args.paths))
    if not targets:
        raise UsageError("no history files or run directories found in " + " ".join(args.paths))
    reports = []
    worst = VALID
    for path in targets:
        try:
            result = _guard(lambda path=path: _check_one(path, args, options))
            code = {True: VALID, False: INVALID}.get(result["valid"], UNKNOWN)
        except HistoryError as exc:
            result = {"valid": None, "error": str(exc)}
            code = COULD_NOT_RUN
        if _SEVERITY[code] > _SEVERITY[worst]:
            worst = code
        reports.append((path, result, code))
        if not args.json:
            print(verdict_line(path, result), flush=True)
            for warning in result.get("warnings", []):
                print(f"    warning: {warning}", flush=True)
    if args.json:
        json.dump({"exit_code": worst, "files": [{"path": str(p), "result": r}
                                                 for p, r, _ in reports]},
                  sys.stdout, indent=2, default=str)
        print()
    else:
        print(summary_line(reports))
    return worst


def verdict_line(path: Path, result: dict[str, Any]) -> str:
    """`PATH: VERDICT - cause (details)`, plus the failure's story for an invalid history."""
    if result.get("error"):
        return f"{path}: error: {result['error']}"
    verdict = {True: "valid", False: "INVALID"}.get(result["valid"], "unknown")
    line = f"{path}: {verdict}"
    checkers = result.get("checkers", {})
    if any(c.get("valid") == NOT_RUN for c in checkers.values()):
        ran = [name for name, c in checkers.items() if c.get("valid") not in (NOT_RUN, None)
               and name != "stats"]  # fmt: skip
        skipped = [f"{name} not run: {c.get('reason')}" for name, c in checkers.items()
                   if c.get("valid") == NOT_RUN]  # fmt: skip
        line += f" ({'; '.join([*ran, *skipped])})"
    if result.get("cause"):
        line += f" - {result['cause']}"
    facts = []
    lin = result.get("checkers", {}).get("linearizable", result)
    if "calls" in lin:
        facts.append(f"{lin['calls']} calls, {lin.get('keys', 0)} keys, {lin.get('model')}")
    if "check_time_s" in result:
        facts.append(f"{result['check_time_s']:.3f} s")
    if facts:
        line += f" ({'; '.join(facts)})"
    if result.get("semantics"):
        line += f"\n    {result['semantics']}"
    failure = lin.get("failure")
    shrunk = lin.get("shrunk")
    if shrunk:
        line += (f"\n    minimal failing set: {shrunk['after']} of {shrunk['before']} calls on "
                 f"key {shrunk['key']} ({shrunk['checks']} checks, {shrunk['seconds']:.2f} s"
                 f"{'' if shrunk['minimal'] else '; time ran out before it was minimal'})")
        line += "".join(f"\n      {describe_call(c)}" for c in shrunk["calls"])
        line += f"\n      <- {shrunk.get('cause')}\n    the full history's failure:"
    if failure:
        line += "\n" + "\n".join("    " + s for s in failure_story(failure))
    return line


def failure_story(failure: dict[str, Any], steps: int = 5) -> list[str]:
    """A few readable lines: the last steps of the longest linearizable prefix, then the op."""
    lines = []
    if failure.get("key") is not None:
        lines.append(f"key {failure['key']}")
    prefix = failure.get("prefix", [])
    if len(prefix) > steps:
        lines.append(f"... {len(prefix) - steps} earlier steps linearized")
    for step in prefix[-steps:]:
        lines.append(f"{describe_call(step['op'])}  => {step['state']}")
    if failure.get("op"):
        lines.append(f"{describe_call(failure['op'])}  <- cannot be linearized: "
                     f"{failure['reason']}")
    return lines


def describe_call(call: dict[str, Any]) -> str:
    """`p3 cas [1, 4] ok (ops 17-18)` from a Call.to_json() dict (history indexes)."""
    value = call["output"] if call["f"] in ("read", "get") else call["value"]
    shown = json.dumps(value)
    if len(shown) > 50:
        shown = shown[:47] + "..."
    start, end = call["invoke_index"], call.get("complete_index")
    where = f"ops {start}-{end}" if end is not None else f"op {start}, never completed"
    return f"p{call['process']} {call['f']} {shown} {call['type']} ({where})"


def summary_line(reports: list[tuple[Path, dict[str, Any], int]]) -> str:
    counts = {code: sum(1 for _, _, c in reports if c == code)
              for code in (VALID, INVALID, UNKNOWN, COULD_NOT_RUN)}
    return (f"checked {len(reports)}: {counts[VALID]} valid, {counts[INVALID]} invalid, "
            f"{counts[UNKNOWN]} unknown, {counts[COULD_NOT_RUN]} could not be read")

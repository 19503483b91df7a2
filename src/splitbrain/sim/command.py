"""`splitbrain sim`: the bundled Raft, unchanged, in a deterministic simulation.

    splitbrain sim [--seed S]                 one seed: a run directory, checked and reported
    splitbrain sim --seeds N [--seed FIRST]   explore N seeds on every core; keep the failures
    splitbrain sim --replay RUN_DIR           rerun a sim run; its files must be byte-identical
    splitbrain sim --shrink RUN_DIR           minimize a failing sim run (or --seed S --shrink)

Every setting not given on the command line is drawn by the seed (swarm.py): fault kinds,
interval, cluster size, clients, rate, workload, run length, network and disk delays. Exit
codes as `splitbrain run`: 0 valid, 1 invalid, 2 unknown, 3 could not run (or, for --replay,
a file that differs), 64 bad usage; for --seeds the worst over all seeds (invalid first).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from splitbrain.arguments import non_negative, positive, share
from splitbrain.config import UNSAFE_FLAGS, RunConfig
from splitbrain.console import log_console
from splitbrain.exitcodes import COULD_NOT_RUN, INVALID, UNKNOWN, VALID, UsageError
from splitbrain.run import finish
from splitbrain.store import RunDir, create_run, timestamp

NAME = "sim"
CPU_BUDGET = 20.0  # a seed of a correct Raft takes about 1 s; a broken one may resend forever


def _pair(text: str, form: str, alone: float | None, need: str,
          valid: Callable[[float, float], bool]) -> tuple[float, float]:
    """`A,B` (or `A` alone: B is `alone`, or A if None) as two floats that are `valid`."""
    first, comma, second = text.partition(",")
    try:
        a = float(first)
        values = (a, float(second) if comma else a if alone is None else alone)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {form}: {text!r}") from None
    if not valid(*values):
        raise argparse.ArgumentTypeError(f"need {need}: {text!r}")
    return values


def _tail(text: str) -> tuple[float, float]:
    return _pair(text, "CHANCE,LONGEST", 0.0, "0 <= CHANCE <= 1 and LONGEST >= 0",
                 lambda chance, longest: 0 <= chance <= 1 and longest >= 0)


def _edges(text: str) -> tuple[float, float]:
    return _pair(text, "EARLIEST,LATEST", 0.0, "chances >= 0 that add up to at most 1",
                 lambda earliest, latest: earliest >= 0 and latest >= 0 and earliest + latest <= 1)


def _range(text: str) -> tuple[float, float]:
    return _pair(text, "LOW,HIGH seconds", None, "0 <= LOW <= HIGH",
                 lambda lo, hi: 0 <= lo <= hi)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from splitbrain.sim.swarm import SIM_FAULTS
    from splitbrain.workloads.registry import WORKLOADS

    mode = p.add_argument_group("what to simulate")
    mode.add_argument("--seed", type=int, help="the seed (with --seeds: the first one)")
    mode.add_argument("--seeds", type=positive(int), metavar="N",
                      help="explore N seeds in parallel; keep run directories of failures only")
    mode.add_argument("--replay", metavar="RUN_DIR",
                      help="rerun a sim run directory and verify it byte for byte")
    mode.add_argument("--shrink", nargs="?", const=True, metavar="RUN_DIR",
                      help="minimize a failing sim run (alone: the failing --seed)")
    mode.add_argument("--jobs", type=positive(int), default=os.cpu_count() or 1, metavar="N",
                      help="worker processes for --seeds and --shrink (%(default)s)")
    mode.add_argument("--stop-on-failure", action="store_true",
                      help="--seeds: stop at the first seed that is invalid or could not "
                           "run (an unknown verdict is no failure: exploring goes on)")
    mode.add_argument("--time-budget", type=positive(float), metavar="S",
                      help="--seeds: start no seed after S wall seconds")
    mode.add_argument("--shrink-budget", type=positive(float), default=60.0, metavar="S",
                      help="wall seconds to spend shrinking (%(default)s)")
    mode.add_argument("--cpu-budget", type=positive(float), default=CPU_BUDGET, metavar="S",
                      help="CPU seconds one simulation may take; then it is stopped and "
                           "checked as far as it got (%(default)s)")
    pins = p.add_argument_group("settings (each drawn by the seed unless given)")
    pins.add_argument("--nodes", type=positive(int), metavar="N", help="cluster size")
    pins.add_argument("--time-limit", type=positive(float), metavar="S",
                      help="virtual seconds of clients + faults")
    pins.add_argument("--concurrency", type=positive(int), metavar="N", help="client workers")
    pins.add_argument("--rate", type=non_negative(float), metavar="OPS",
                      help="total operations per second, 0 = unlimited")
    pins.add_argument("--workload", choices=sorted(WORKLOADS))
    pins.add_argument("--reads", type=share, metavar="SHARE",
                      help="share of operations that are reads (as for run)")
    pins.add_argument("--nemesis", metavar="FAULTS",
                      help=f"comma-separated faults: {', '.join(SIM_FAULTS)}, clock, all (all "
                           "but clock), or none; "
                           "FAULT:VARIANT[+VARIANT] as for `splitbrain run`")
    pins.add_argument("--nemesis-interval", type=positive(float), metavar="S",
                      help="virtual seconds between fault changes")
    pins.add_argument("--op-timeout", type=positive(float), metavar="S",
                      help="virtual seconds before an operation is indeterminate")
    pins.add_argument("--latency", type=_range, metavar="LOW,HIGH",
                      help="one-way network delay per chunk, seconds (uniform)")
    pins.add_argument("--disk", type=_range, metavar="LOW,HIGH",
                      help="WAL write + fsync, seconds (uniform)")
    pins.add_argument("--boot", type=_range, metavar="LOW,HIGH",
                      help="node process start, seconds (uniform)")
    pins.add_argument("--latency-tail", type=_tail, metavar="CHANCE,LONGEST",
                      help="chance that a network delay is drawn from a heavy tail up to "
                           "LONGEST seconds (0,0: none)")
    pins.add_argument("--disk-tail", type=_tail, metavar="CHANCE,LONGEST",
                      help="the same for a WAL write + fsync")
    pins.add_argument("--timeouts", type=_edges, metavar="EARLIEST,LATEST",
                      help="chances that a node's randomized election timeout is the earliest, "
                           "or the latest, its range allows (0,0: uniform)")
    fixed = p.add_argument_group("the system and the output")
    fixed.add_argument("--unsafe", action="append", default=[], choices=UNSAFE_FLAGS,
                       help="run the nodes with a deliberate bug (repeatable; as for run)")
    fixed.add_argument("--node-arg", action="append", default=[], metavar="ARG",
                       help="extra argument for every node (repeatable; as for run)")
    fixed.add_argument("--out", default="runs", metavar="DIR",
                       help="base directory of runs (%(default)s)")
    fixed.add_argument("--name", default="", help=f"run name (default: {NAME})")
    fixed.add_argument("--check-time-limit", type=positive(float), default=60.0, metavar="S",
                       help="seconds the linearizability checker may search (%(default)s)")


def settings(args: argparse.Namespace) -> tuple[dict[str, Any], RunConfig]:
    """(pinned settings, the base RunConfig the seeds' draws start from); UsageError."""
    from splitbrain.nemesis.interval import interval_problem
    from splitbrain.nemesis.schedule import parse_faults
    from splitbrain.targets.raft import node_args_problem

    pinned: dict[str, Any] = {}
    for name in ("nodes", "time_limit", "concurrency", "rate", "workload", "nemesis_interval",
                 "op_timeout", "latency", "disk", "boot", "latency_tail", "disk_tail",
                 "reads", "timeouts"):  # fmt: skip
        if getattr(args, name) is not None:
            pinned[name] = getattr(args, name)
    if pinned.get("nodes", 1) < 1:
        raise UsageError("--nodes must be at least 1")
    if pinned.get("concurrency", 1) < 1:
        raise UsageError("--concurrency must be at least 1")
    interval = pinned.get("nemesis_interval")
    problem = interval_problem(interval) if interval is not None else None
    if problem:
        raise UsageError(f"--nemesis-interval {problem}")
    if args.nemesis is not None:
        try:
            faults = parse_faults(args.nemesis, pinned.get("nodes"))
        except ValueError as exc:
            raise UsageError(f"--nemesis: {exc}") from None
        pinned["nemesis"] = faults
    base = RunConfig(out=args.out, name=args.name or NAME, unsafe=tuple(dict.fromkeys(args.unsafe)),
                     node_args=tuple(args.node_arg), check_time_limit=args.check_time_limit)
    problem = node_args_problem(base.node_args)
    if problem:
        raise UsageError(f"--node-arg {problem}")
    return pinned, base


def run(args: argparse.Namespace) -> int:
    modes = [m for m in ("seeds", "replay") if getattr(args, m) is not None]
    if isinstance(args.shrink, str):
        modes.append("shrink RUN_DIR")
    if len(modes) > 1:
        raise UsageError(f"choose one of --seeds, --replay, --shrink RUN_DIR (not {modes})")
    console = log_console(stderr=True)
    if args.replay is not None:
        return replay(Path(args.replay), args, console)
    if isinstance(args.shrink, str):
        return shrink_run(Path(args.shrink), args, console)
    pinned, base = settings(args)
    if args.seeds is not None:
        if args.shrink:
            raise UsageError("--shrink takes one failing seed (--seed S), not --seeds")
        return explore_seeds(args, pinned, base, console)
    from splitbrain.sim.swarm import draw

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    config = draw(seed, pinned, base)
    code, run_dir = simulate_one(config, console, cpu_budget=args.cpu_budget)
    if args.shrink and code == INVALID and run_dir is not None:
        return shrink_run(run_dir.path, args, console)
    return code


def simulate_one(config: Any, console: Console, name: str | None = None,
                 cpu_budget: float | None = None) -> tuple[int, RunDir | None]:  # fmt: skip
    """Simulate into a new run directory, check, report; (exit code, run dir)."""
    from splitbrain.sim.simulate import simulate

    try:
        run_dir = create_run(config.run.out, name or config.run.run_name)
    except OSError as exc:
        console.print(f"splitbrain sim: cannot create the run directory in {config.run.out}: {exc}")
        return COULD_NOT_RUN, None
    console.print(f"[bold]splitbrain sim[/] {run_dir.path}  seed {config.seed}")
    console.print(f"  reproduce: {config.command()}", highlight=False, markup=False)
    try:
        simulated = simulate(config, run_dir, cpu_budget=cpu_budget)
    except Exception as exc:
        log = run_dir.path / "harness-error.txt"
        log.write_text(traceback.format_exc(), encoding="utf-8")
        console.print(f"[red]could not run[/]: {type(exc).__name__}: {exc} (details: {log})")
        return COULD_NOT_RUN, run_dir
    console.print(f"  simulated {simulated.sim_seconds:.1f} s in {simulated.wall_seconds:.1f} s")
    return finish(run_dir, config.run, console, simulated.warnings), run_dir


def explore_seeds(args: argparse.Namespace, pinned: dict[str, Any], base: RunConfig,
                  console: Console) -> int:  # fmt: skip
    from splitbrain.sim.explore import explore

    first = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    seeds = range(first, first + args.seeds)
    console.print(f"[bold]splitbrain sim[/] seeds {first}..{seeds[-1]} on {args.jobs} "
                  f"process(es){'; pinned: ' + ', '.join(sorted(pinned)) if pinned else ''}")
    began = time.perf_counter()
    results = []
    stopped = ""
    results_iter = explore(seeds, pinned, base, jobs=args.jobs, cpu_budget=args.cpu_budget)
    try:
        for result in results_iter:
            results.append(result)
            if result.valid is not True:
                verdict = {False: "INVALID", "unknown": "unknown", None: "could not run"}.get(
                    result.valid, str(result.valid))  # type: ignore[call-overload]
                print(f"seed {result.seed}: {verdict} ({result.kind}) after "
                      f"{time.perf_counter() - began:.1f} s\n  reproduce: {result.command}"
                      f"\n  run: {result.run}", flush=True)
                # A seed whose verdict is unknown (say no operation succeeded: a bug that
                # stalls the cluster) is not a failure; another seed may show what it breaks.
                if args.stop_on_failure and result.valid != "unknown":
                    stopped = "stopped at the first failure"
                    break
            if args.time_budget is not None and time.perf_counter() - began > args.time_budget:
                stopped = f"time budget of {args.time_budget:g} s spent"
                break
            if len(results) % 50 == 0:
                console.print(f"  {len(results)} seeds, {time.perf_counter() - began:.0f} s")
    finally:
        results_iter.close()
    wall = time.perf_counter() - began
    sim = sum(r.sim_seconds for r in results)
    counts = {k: sum(1 for r in results if r.valid is v)
              for k, v in (("valid", True), ("invalid", False), ("could_not_run", None))}
    counts["unknown"] = sum(1 for r in results if r.valid == "unknown")
    summary = {"first_seed": first, "seeds_asked": args.seeds, "seeds_run": len(results),
               "stopped": stopped or None, "jobs": args.jobs, "pinned": _jsonable(pinned),
               "unsafe": list(base.unsafe), "wall_seconds": round(wall, 3),
               "seeds_per_second": round(len(results) / wall, 3) if wall else None,
               "sim_seconds_per_wall_second": round(sim / wall, 3) if wall else None,
               **counts, "failures": [r.to_json() for r in results if r.valid is not True]}
    path = Path(base.out) / base.run_name / f"seeds-{timestamp()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"{len(results)} seeds in {wall:.1f} s: {summary['seeds_per_second']} seeds/s, "
          f"{summary['sim_seconds_per_wall_second']} simulated s per wall s; "
          f"{counts['invalid']} invalid, {counts['unknown']} unknown, "
          f"{counts['could_not_run']} could not run"
          f"{'; ' + stopped if stopped else ''}\n  summary: {path}")
    if counts["invalid"]:
        return INVALID
    if counts["unknown"]:
        return UNKNOWN
    return COULD_NOT_RUN if counts["could_not_run"] else VALID


def _jsonable(pinned: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in pinned.items()}


def _load(path: Path) -> Any:
    from splitbrain.sim.config import ConfigError, SimConfig

    run = RunDir(path)
    if not run.config.is_file():
        raise UsageError(f"{path}: no config.json (not a run directory)")
    try:
        return SimConfig.from_json(run.read_json(run.config))
    except (OSError, ValueError) as exc:
        reason = exc if isinstance(exc, ConfigError) else f"config.json: {exc}"
        raise UsageError(f"{path}: {reason}") from None


def replay(path: Path, args: argparse.Namespace, console: Console) -> int:
    """Rerun a sim run from its config.json; exit 3 at the first file that differs."""
    config = _load(path).replace_run(out=args.out)
    code, new = simulate_one(config, console, name=f"{config.run.run_name}-replay")
    if new is None:
        return code
    difference = first_difference(RunDir(path), new)
    if difference:
        print(f"replay of {path} DIFFERS: {difference}")
        return COULD_NOT_RUN
    print(f"replay of {path} is byte-identical: history, events, node logs")
    return code


REPLAYED = ("history.jsonl",)  # and every node's events.jsonl and node.log


def first_difference(a: RunDir, b: RunDir) -> str | None:
    """The first file and line where two runs' histories, events or node logs differ."""
    nodes = sorted(set(a.node_names()) | set(b.node_names()), key=lambda n: (len(n), n))
    rels = [*REPLAYED, *(f"nodes/{n}/{f}" for n in nodes for f in ("events.jsonl", "node.log"))]
    for rel in rels:
        pa, pb = a.path / rel, b.path / rel
        if not pa.is_file() or not pb.is_file():
            if pa.is_file() != pb.is_file():
                return f"{rel}: only in {pa.parent if pa.is_file() else pb.parent}"
            continue
        la, lb = pa.read_bytes().split(b"\n"), pb.read_bytes().split(b"\n")
        for number, (x, y) in enumerate(zip(la, lb, strict=False), start=1):
            if x != y:
                return (f"{rel}:{number}:\n  was: {x.decode(errors='replace')[:200]}\n"
                        f"  now: {y.decode(errors='replace')[:200]}")
        if len(la) != len(lb):
            return f"{rel}: {len(la) - 1} lines before, {len(lb) - 1} now"
    return None


def shrink_run(path: Path, args: argparse.Namespace, console: Console) -> int:
    """Minimize the failing sim run at `path` into a run directory of its own."""
    from splitbrain.reports.data import run_size
    from splitbrain.sim.explore import SCRATCH, failure_kind
    from splitbrain.sim.shrink import shrink

    config = _load(path)
    run = RunDir(path)
    try:
        kind = failure_kind(run.read_json(run.results))
    except (OSError, ValueError):
        raise UsageError(f"{path}: no readable results.json (check it first)") from None
    if kind is None or kind.startswith("unknown") or kind == "could-not-run":
        raise UsageError(f"{path}: nothing to shrink (the run did not fail: {kind or 'valid'})")
    ops, faults = run_size(run)
    console.print(f"[bold]shrinking[/] {path}: {kind}, {ops} ops / {faults} faults "
                  f"(budget {args.shrink_budget:g} s, {args.jobs} process(es))")
    began = time.perf_counter()
    smaller, tried = shrink(config.replace_run(out=args.out), kind,
                            scratch=Path(args.out) / SCRATCH, budget=args.shrink_budget,
                            jobs=args.jobs, cpu_budget=args.cpu_budget,
                            say=console.print)  # fmt: skip
    smaller = replace(smaller, shrunk_from={"ops": ops, "faults": faults, "run": str(path),
                                            "kind": kind, "candidates": tried})  # fmt: skip
    console.print(f"  {tried} candidates in {time.perf_counter() - began:.1f} s")
    code, new = simulate_one(smaller, console, name=f"{config.run.run_name}-shrunk",
                             cpu_budget=args.cpu_budget)
    if new is not None:
        new_ops, new_faults = run_size(new)
        print(f"minimized from {ops} ops / {faults} faults to {new_ops} / {new_faults}: "
              f"{new.path}")
    return code


"""`splitbrain run`: one chaos run from configuration to verdict.

config (one seed, one target) → run directory → cluster (network + nodes) → interpreter
(clients + nemesis, heal, recovery, final reads) streaming history.jsonl → teardown (logs kept)
→ checkers → results.json → report.html and the runs index → exit code (DESIGN.md).

The target (splitbrain/targets/) decides what runs and what can be asked of it: a workload,
--unsafe flag, network mode or fault it cannot take is a usage error (64); what the machine
lacks to run it (an executable, root for netns) is said before anything starts (3).

Teardown always runs: on a normal end, an exception, Ctrl-C or SIGTERM. If the driver itself is
killed, the lifeline takes the nodes and proxies down with it, and `splitbrain check RUN_DIR`
checks the history written so far.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rich.console import Console

from splitbrain.arguments import non_negative, positive, share
from splitbrain.config import KNOBS, UNSAFE_FLAGS, RunConfig
from splitbrain.console import log_console
from splitbrain.exitcodes import COULD_NOT_RUN, UsageError, exit_code
from splitbrain.history import HistoryError, HistoryWriter
from splitbrain.nemesis.control import ClusterControl
from splitbrain.store import RunDir, create_run
from splitbrain.targets.client import Client
from splitbrain.targets.target import DEFAULT_NEMESIS_INTERVAL, NETWORKS, Target
from splitbrain.workloads.interpreter import Interpreter, Options, Tally
from splitbrain.workloads.progress import show_progress
from splitbrain.workloads.registry import WORKLOADS

if TYPE_CHECKING:
    from splitbrain.nemesis.schedule import Plan

DEFAULTS = RunConfig()


def add_arguments(p: argparse.ArgumentParser) -> None:
    from splitbrain.nemesis.schedule import FAULTS

    d = DEFAULTS
    p.add_argument("--nodes", type=non_negative(int), default=d.nodes, metavar="N",
                   help="cluster size (%(default)s)")
    p.add_argument("--time-limit", type=non_negative(float), default=d.time_limit, metavar="S",
                   help="seconds of clients + faults (%(default)s)")
    p.add_argument("--concurrency", type=non_negative(int), default=None, metavar="N",
                   help="client workers (default: 2 per node)")
    p.add_argument("--rate", type=non_negative(float), default=d.rate, metavar="OPS",
                   help="total operations per second, 0 = unlimited (%(default)s)")
    p.add_argument("--workload", choices=sorted(WORKLOADS), default=d.workload,
                   help="; ".join(f"{w.name}: {w.description}" for w in WORKLOADS.values())
                        + " (%(default)s)")
    p.add_argument("--reads", type=share, default=d.reads, metavar="SHARE",
                   help="share of operations that are reads, the rest writes and "
                        "compare-and-sets, or appends and puts (%(default)s)")
    p.add_argument("--nemesis", default=",".join(d.nemesis), metavar="FAULTS",
                   help=f"comma-separated faults: {', '.join(FAULTS)}, all, or none; "
                        "FAULT:VARIANT[+VARIANT] keeps only those variants, e.g. kill:leader, "
                        "crash:after-vote+all (%(default)s)")
    p.add_argument("--nemesis-interval", type=non_negative(float), default=None, metavar="S",
                   help="seconds between fault changes (default: the target's, a few times "
                        f"its election time: raft {d.nemesis_interval:g}, etcd "
                        f"{DEFAULT_NEMESIS_INTERVAL:g})")
    p.add_argument("--seed", type=int, default=None, help="seed of every random choice")
    p.add_argument("--out", default=d.out, metavar="DIR",
                   help="base directory of runs (%(default)s)")
    p.add_argument("--name", default="",
                   help="run name, one path component (default: the workload)")
    p.add_argument("--unsafe", action="append", default=[], choices=UNSAFE_FLAGS,
                   help="run the nodes with a deliberate bug (repeatable): stale-reads (reads "
                        "from local state), commit-old-terms (count replicas of any term, no "
                        "election no-op: the paper's Figure 8 Raft), no-vote-persist (the vote is "
                        "forgotten on restart), no-log-check (votes without the up-to-date check), "
                        "ack-before-fsync (acknowledges and counts entries written but not yet "
                        "fsynced: lost by a power loss)")
    p.add_argument("--node-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for every node, e.g. --node-arg=--election-tick=30 "
                        "(repeatable; see `splitbrain node --help`)")
    p.add_argument("--knobs", choices=KNOBS, default=d.knobs,
                   help="swarm: a swarm run (more than three fault kinds, as `all`) draws the "
                        "target's node settings from the seed, as the simulator does (the "
                        "bundled Raft's entries per message, snapshot chunk and interval; a "
                        "--node-arg that names one keeps it); default: the nodes' own "
                        "(%(default)s)")
    p.add_argument("--op-timeout", type=positive(float), default=d.op_timeout, metavar="S",
                   help="seconds each attempt of an operation may take (%(default)s)")
    p.add_argument("--retries", type=non_negative(int), default=d.retries, metavar="N",
                   help="times a client retries a request that may have taken effect, under the "
                        "same client id and sequence number, before recording it indeterminate "
                        "(%(default)s)")
    p.add_argument("--check-time-limit", type=non_negative(float), default=d.check_time_limit,
                   metavar="S",
                   help="seconds the linearizability checker may search (%(default)s)")
    p.add_argument("--target", default=d.target, metavar="NAME|FILE",
                   help="the system under test: raft (the bundled Raft), etcd, a plugin's name, "
                        "or a TOML target file; see docs/targets.md (%(default)s)")
    p.add_argument("--target-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="an argument of the target, e.g. --target-arg reads=serializable for "
                        "etcd (repeatable)")
    p.add_argument("--network", choices=NETWORKS, default=None,
                   help="proxy: a link proxy on every directed link (no root needed); netns: a "
                        "network namespace per node, nftables for faults (root) (default: the "
                        "target's: proxy for raft, netns for etcd)")


def config_from_args(args: argparse.Namespace, notes: list[str] | None = None) -> RunConfig:
    """The run's configuration; UsageError for anything the target cannot take. `notes`
    receives what `--nemesis` left out because the target or network mode cannot do it."""
    from splitbrain.nemesis.interval import interval_problem
    from splitbrain.nemesis.schedule import is_swarm, parse_faults
    from splitbrain.targets import knobs
    from splitbrain.targets.faults import FaultError, fit

    if args.nodes < 1:
        raise UsageError("--nodes must be at least 1")
    problem = name_problem(args.name)
    if problem:
        raise UsageError(f"--name {args.name!r}: {problem}")
    spec, target, target_args = _target(args)
    network = args.network or target.default_network
    if network not in target.networks:
        raise UsageError(f"--network {network}: target {target.name} runs in "
                         f"{', '.join(target.networks)} only")
    if args.workload not in target.workloads:
        raise UsageError(f"--workload {args.workload}: target {target.name} runs "
                         f"{', '.join(target.workloads)} only")
    if target.node_args_problem is not None:
        problem = target.node_args_problem(tuple(args.node_arg))
        if problem:
            raise UsageError(f"--node-arg {problem}")
    for flag in args.unsafe:
        if flag not in target.unsafe:
            raise UsageError(f"--unsafe {flag}: target {target.name} has "
                             f"{'only ' + ', '.join(target.unsafe) if target.unsafe else 'none'}")
    try:
        faults = parse_faults(args.nemesis, args.nodes)
        everything = "all" in (t.strip() for t in args.nemesis.split(","))
        faults, left_out = fit(faults, target, network, everything=everything)
    except FaultError as exc:
        raise UsageError(f"--nemesis {exc}") from None
    except ValueError as exc:
        raise UsageError(f"--nemesis: {exc}") from None
    if everything:
        faults, left_out = _without_fuse(faults, left_out)
    if notes is not None:
        notes.extend(left_out)
    interval = (target.nemesis_interval if args.nemesis_interval is None
                else args.nemesis_interval)
    problem = interval_problem(interval) if faults else None
    if problem:
        raise UsageError(f"--nemesis-interval {problem}")
    concurrency = args.concurrency if args.concurrency is not None else 2 * args.nodes
    if concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    node_args = tuple(args.node_arg)
    if args.knobs == "swarm" and is_swarm({f.partition(":")[0] for f in faults}):
        node_args += knobs.draw(target.knobs, random.Random(f"{seed}:knobs"), node_args)
    return RunConfig(
        nodes=args.nodes,
        time_limit=args.time_limit,
        concurrency=concurrency,
        rate=args.rate,
        workload=args.workload,
        reads=args.reads,
        nemesis=tuple(faults),
        nemesis_interval=interval,
        seed=seed,
        out=args.out,
        name=args.name,
        unsafe=tuple(dict.fromkeys(args.unsafe)),
        op_timeout=args.op_timeout,
        retries=args.retries,
        check_time_limit=args.check_time_limit,
        node_args=node_args,
        knobs=args.knobs,
        target=spec,
        target_args=target_args,
        network=network,
    )


def _without_fuse(faults: tuple[str, ...], notes: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """`all` on a machine that cannot mount FUSE: the faults that need the mount are left out,
    with a note saying why (named alone, they make the run exit 3: see run())."""
    from splitbrain.cluster import disks

    need = [f for f in faults if f.partition(":")[0] in FUSE_FAULTS]
    why = disks.missing() if need else None
    if why is None:
        return faults, notes
    kept = tuple(f for f in faults if f not in need)
    return kept, [*notes, f"no {', '.join(f.partition(':')[0] for f in need)}: {why}"]


FUSE_FAULTS = ("power-loss", "disk-full")  # corrupt damages files with or without the mount
RESERVED_NAMES = frozenset({"latest", "index.html"})  # what the runs directory itself holds


def name_problem(name: str) -> str | None:
    """Why `name` cannot name runs (they go to OUT/NAME/...), or None. One path component:
    no separator, not . or .., nothing the runs directory uses itself, no control characters."""
    if not name:
        return None  # the default: the workload's name
    if "/" in name or "\\" in name or name in (".", ".."):
        return "must be one path component (no '/', not '.' or '..')"
    if name in RESERVED_NAMES or name.startswith("."):
        return "is reserved in the runs directory"
    if any(ord(c) < 32 or ord(c) == 127 for c in name) or len(name.encode()) > 200:
        return "must be printable and at most 200 bytes"
    return None


def _target(args: argparse.Namespace) -> tuple[str, Target, tuple[tuple[str, str], ...]]:
    """(spec, target, its arguments) for --target and --target-arg. A file's path is made
    absolute, so the recorded command works from anywhere."""
    from splitbrain.targets.registry import BUILTIN, TargetError, load_target, parse_args

    spec = args.target
    if spec not in BUILTIN and Path(spec).is_file():
        spec = str(Path(spec).resolve())
    try:
        pairs = parse_args(args.target_arg)
        return spec, load_target(spec, pairs), tuple(pairs.items())
    except TargetError as exc:
        raise UsageError(str(exc)) from None


async def execute(config: RunConfig, run: RunDir, console: Console, target: Target) -> Tally:
    """Cluster up, interpreter, teardown. Raises on a harness failure; cancellable."""
    from splitbrain.cluster.cluster import Cluster

    with HistoryWriter(run.history) as writer:
        async with Cluster(run, config.node_names, unsafe=config.unsafe,
                           node_args=config.node_args, target=target, network=config.network,
                           clocks="clock" in config.faults,
                           disks=any(f in FUSE_FAULTS for f in config.faults),
                           ) as cluster:  # fmt: skip
            return await drive(config, cluster, writer, target, console=console)


class DrivenCluster(ClusterControl, Protocol):
    client_addresses: dict[str, tuple[str, int]]


def schedule(config: RunConfig) -> Iterator[Plan]:
    """The run's fault plans, drawn from its seed (endless; see nemesis/schedule.py)."""
    from splitbrain.nemesis.schedule import plan_schedule

    return plan_schedule(config.nemesis, config.node_names, config.nemesis_interval,
                         random.Random(f"{config.seed}:nemesis"))  # fmt: skip


async def drive(config: RunConfig, cluster: DrivenCluster, writer: HistoryWriter,
                target: Target, *, plans: Iterable[Plan] | None = None,
                console: Console | None = None, **phases: float) -> Tally:  # fmt: skip
    """Clients, nemesis and interpreter on a running cluster, real or simulated (sim/). The
    fault plans come from the seed unless given (a shrunk simulation replays its own);
    `phases` may bound the recovery and final phases (Options.recovery_timeout, ...)."""
    from splitbrain.nemesis.nemesis import Nemesis
    from splitbrain.nemesis.pulse import RequestPulse

    workload = WORKLOADS[config.workload]
    nodes = config.node_names
    options = Options(
        concurrency=config.concurrency,
        time_limit=config.time_limit,
        rate=config.rate,
        op_timeout=config.op_timeout,
        reads=config.reads,
        seed=config.seed,
        **phases,
    )

    def client(process: int, home: str) -> Client:
        if target.retrying_client is not None and config.retries:
            return target.retrying_client(cluster.client_addresses, home, f"c{process}",
                                          config.op_timeout, config.retries)
        return target.client(cluster.client_addresses, home, f"c{process}", config.op_timeout)

    if plans is None:
        plans = schedule(config)
    requests = RequestPulse()  # the nemesis times some pauses by client requests
    # Also without faults: the nemesis records nodes that exit by themselves.
    nemesis = Nemesis(cluster, plans if config.nemesis else iter(()), requests)
    interpreter = Interpreter(workload, nodes, client, nemesis, writer, options,
                              leader=cluster.leader if target.leader else None,
                              on_invoke=requests.note)  # fmt: skip
    if console is None:
        return await interpreter.run()
    in_force = nemesis.in_force
    progress = asyncio.create_task(show_progress(interpreter.tally, in_force, console))
    try:
        return await interpreter.run()
    finally:
        progress.cancel()
        await asyncio.gather(progress, return_exceptions=True)


async def _execute_with_signals(config: RunConfig, run: RunDir, console: Console,
                                target: Target) -> Tally:  # fmt: skip
    """SIGTERM cancels the run like Ctrl-C does, so teardown runs either way."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await execute(config, run, console, target)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def run(args: argparse.Namespace) -> int:
    from splitbrain.cluster import clocks, disks, netns
    from splitbrain.targets.registry import load_target

    notes: list[str] = []
    config = config_from_args(args, notes)
    console = log_console(stderr=True)
    target = load_target(config.target, dict(config.target_args))
    lacking = (target.missing() or (netns.missing() if config.network == "netns" else None)
               or (clocks.missing() if "clock" in config.faults else None)
               or (disks.missing() if any(f in FUSE_FAULTS for f in config.faults) else None))
    if lacking:
        console.print(f"splitbrain run: cannot run target {target.name}: {lacking}",
                      markup=False, soft_wrap=True)
        return COULD_NOT_RUN
    try:
        run_dir = create_run(config.out, config.run_name)
    except OSError as exc:
        console.print(f"splitbrain run: cannot create the run directory in {config.out}: {exc}")
        return COULD_NOT_RUN
    run_dir.write_json(run_dir.config, {**config.to_json(), "target_name": target.name,
                                        "target_source": target.source,
                                        "target_capabilities": list(target.capabilities),
                                        **({"nemesis_notes": notes} if notes else {})})
    console.print(f"[bold]splitbrain run[/] {run_dir.path}  seed {config.seed}")
    console.print(f"  target {target.name} ({config.network}); reproduce: {config.command()}",
                  highlight=False, markup=False, soft_wrap=True)
    for note in notes:
        console.print(f"  nemesis: {note}", markup=False, soft_wrap=True)
    drawn = config.node_args[len(args.node_arg):]
    if drawn:
        console.print(f"  knobs drawn from the seed: {' '.join(drawn)} (--knobs default keeps "
                      "the nodes' own)", highlight=False, markup=False, soft_wrap=True)
    try:
        tally = asyncio.run(_execute_with_signals(config, run_dir, console, target))
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.print(f"[red]interrupted[/]: cluster torn down; history so far in {run_dir.path}"
                      f"\n  check it with: splitbrain check {run_dir.path}")
        return COULD_NOT_RUN
    except Exception as exc:  # a harness failure: the cluster is already torn down
        log = run_dir.path / "harness-error.txt"
        log.write_text(traceback.format_exc(), encoding="utf-8")
        console.print(f"[red]could not run[/]: {type(exc).__name__}: {exc} (details: {log})")
        return COULD_NOT_RUN
    return finish(run_dir, config, console, recovery_warnings(tally))


def recovery_warnings(tally: Tally) -> list[str]:
    """What the recovery and final phases could not do: worth a line in results.json."""
    warnings = []
    if tally.leader_after_heal is False:
        warnings.append("run: no leader was elected within the recovery wait after healing")
    if tally.final_unread:
        why = ("a leader was elected, but no read of them succeeded within --op-timeout"
               if tally.leader_after_heal else "the cluster did not recover")  # fmt: skip
        warnings.append(f"run: {tally.final_unread} key(s) could not be read in the final "
                        f"phase ({why})")
    return warnings


def finish(run_dir: RunDir, config: RunConfig, console: Console, warnings: list[str]) -> int:
    """Check, report, index, print the verdict; returns the exit code."""
    from splitbrain.checker.command import check_run, verdict_line
    from splitbrain.reports import render_report, write_index

    console.print("checking ...")
    try:
        results = check_run(run_dir, time_limit=config.check_time_limit)
    except HistoryError as exc:  # our own history is malformed: a harness bug
        console.print(f"[red]could not check[/]: {exc}")
        return COULD_NOT_RUN
    if warnings:
        results["warnings"] = [*warnings, *results.get("warnings", [])]
        run_dir.write_json(run_dir.results, results)
    render_report(run_dir, results)  # a rendering failure is a warning, never a verdict
    with contextlib.suppress(OSError):
        write_index(config.out)
    out = log_console()  # the verdict goes to stdout; progress went to stderr
    out.print(verdict_line(run_dir.path, results), markup=False)
    stats = results["checkers"].get("stats", {})
    counts = {t: sum(f.get(t, 0) for f in stats.get("by_f", {}).values())
              for t in ("ok", "fail", "info")}
    out.print(f"  ops: {counts['ok']} ok, {counts['fail']} fail, {counts['info']} info; "
              f"check {results.get('check_time_s', 0):.2f} s")
    for warning in results.get("warnings", []):
        out.print(f"  warning: {warning}", markup=False)
    out.print(f"  report: {run_dir.report}")
    return exit_code(results["valid"])

"""`splitbrain node`: run one node of the bundled Raft key-value server until SIGTERM.

    splitbrain node --id n1 --cluster n1=127.0.0.1:7001,n2=127.0.0.1:7102,n3=127.0.0.1:7103
                    --client-port 8001 --data-dir DIR [--events FILE] [--log FILE]
                    [--cluster-id NAME] [--tick-ms 10] [--election-tick 15] [--heartbeat-tick 1]
                    [--unsafe NAME]... [--lifeline-fd FD] [--no-fsync] [--secret-file PATH]
                    [--read-mode index|lease] [--snapshot-every N] [--max-msg-entries N]
                    [--snapshot-chunk BYTES]

In --cluster the node's own entry is where it listens for peers (and its host is where clients
connect, on --client-port); every other entry is where to reach that peer (perhaps a link
proxy). Events go to <data-dir>/../events.jsonl and the human log to <data-dir>/../node.log
unless told otherwise. The --unsafe flags are deliberate bugs, off by default, for seeing
splitbrain catch real ones: stale-reads, commit-old-terms, no-vote-persist, no-log-check,
ack-before-fsync. --read-mode lease serves reads from the leader's lease (safe only while clocks
agree); `splitbrain run` and `splitbrain sim` pass it with --node-arg=--read-mode=lease.
--snapshot-every N snapshots the state machine and compacts the log every N applied entries
(default 1000, 0: never; `--node-arg=--snapshot-every=N`). --max-msg-entries and
--snapshot-chunk bound what one AppendEntries or InstallSnapshot message carries (the swarms of
`splitbrain sim` and `run --nemesis all` draw small ones, targets/knobs.py: a follower behind
catches up over many rounds).

With --secret-file (a file only its owner may read; `splitbrain run` writes one per run), peer
links are authenticated (auth.py): hellos are signed and unsigned or forged ones refused.
Without it, any process that knows the cluster id can speak for a member, as before.
A path that cannot be used (a data directory under a file, a log that is a directory, a
damaged log) is one line on stderr and exit 3.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

from splitbrain.arguments import positive
from splitbrain.exitcodes import COULD_NOT_RUN, UsageError
from splitbrain.raft.auth import AuthError, read_secret
from splitbrain.raft.codec import MAX_SNAPSHOT_CHUNK
from splitbrain.raft.host import NodeHost
from splitbrain.raft.raft import MAX_MSG_ENTRIES, READ_MODES, SNAPSHOT_CHUNK
from splitbrain.raft.server import SNAPSHOT_EVERY, UNSAFE_FLAGS, NodeConfig, Server, log
from splitbrain.raft.wal import WALError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--id", required=True, help="this node's id, one of --cluster")
    p.add_argument("--cluster", required=True, help="n1=HOST:PORT,n2=HOST:PORT,... (peer links)")
    p.add_argument("--client-port", type=int, required=True, help="TCP port of the client API")
    p.add_argument("--data-dir", type=Path, required=True, help="durable state (the log)")
    p.add_argument("--events", type=Path, help="events.jsonl (default: DATA_DIR/../events.jsonl)")
    p.add_argument("--log", type=Path, help="human log (default: DATA_DIR/../node.log)")
    p.add_argument("--cluster-id", default="splitbrain", help="peers with another id are refused")
    p.add_argument("--tick-ms", type=positive(float), default=10.0,
                   help="milliseconds per Raft tick")
    p.add_argument(
        "--election-tick", type=int, default=15, help="election timeout: random in [N, 2N) ticks"
    )
    p.add_argument("--heartbeat-tick", type=int, default=1, help="ticks between heartbeats")
    p.add_argument(
        "--unsafe",
        action="append",
        default=[],
        choices=sorted(UNSAFE_FLAGS),
        help="enable a deliberate bug (repeatable)",
    )
    p.add_argument("--lifeline-fd", type=int, help="exit when this pipe closes (driver death)")
    p.add_argument("--no-fsync", action="store_true", help="skip fsync (unsafe on power loss)")
    p.add_argument("--read-mode", choices=READ_MODES, default="index",
                   help="index: ReadIndex, a quorum round per batch of reads (default); lease: "
                        "the leader serves reads at once while its lease lasts (thesis §6.4.1; "
                        "unsafe when clocks run at different rates)")
    p.add_argument("--snapshot-every", type=_count, default=SNAPSHOT_EVERY, metavar="N",
                   help="snapshot the state machine and compact the log every N applied "
                        "entries (default %(default)s; 0: never)")
    p.add_argument("--max-msg-entries", type=positive(int), default=MAX_MSG_ENTRIES,
                   metavar="N", help="entries per AppendEntries message at most (default "
                                     "%(default)s): a follower that fell behind catches up in "
                                     "rounds of N")
    p.add_argument("--snapshot-chunk", type=_chunk, default=SNAPSHOT_CHUNK,
                   metavar="BYTES", help="snapshot bytes per InstallSnapshot message at most "
                                         "(default %(default)s)")
    p.add_argument("--secret-file", type=Path,
                   help="the cluster's secret (mode 0600): sign hellos, refuse unsigned peers")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return value


def _chunk(text: str) -> int:
    value = positive(int)(text)
    if value > MAX_SNAPSHOT_CHUNK:
        raise argparse.ArgumentTypeError(f"{text} is over {MAX_SNAPSHOT_CHUNK}, the most a "
                                         "snapshot message may carry")
    return value


def parse_cluster(text: str) -> dict[str, tuple[str, int]]:
    """'n1=127.0.0.1:7001,n2=...' -> {"n1": ("127.0.0.1", 7001), ...}; UsageError if malformed."""
    cluster: dict[str, tuple[str, int]] = {}
    for item in text.split(","):
        name, eq, addr = item.strip().partition("=")
        host, colon, port = addr.rpartition(":")
        if not (name and eq and host and colon and port.isdigit() and 0 < int(port) < 65536):
            raise UsageError(f"--cluster: {item.strip()!r} is not NAME=HOST:PORT")
        if name in cluster:
            raise UsageError(f"--cluster: node {name!r} is listed twice")
        cluster[name] = (host, int(port))
    return cluster


class _Parser(argparse.ArgumentParser):
    """The node's parser, raising UsageError where `splitbrain node` would exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def parse(argv: Sequence[str]) -> NodeConfig:
    """The configuration of a node started with `argv` (what follows `splitbrain node`), read
    as that command reads it; UsageError where it would refuse them (the simulator builds its
    nodes with this, and the raft target checks --node-arg with it before a run)."""
    parser = _Parser(prog="splitbrain node", add_help=False)  # --help is not an option here
    add_arguments(parser)
    return node_config(parser.parse_args(list(argv)))


def node_config(args: argparse.Namespace) -> NodeConfig:
    """The node's configuration from its parsed flags; UsageError names a bad one."""
    cluster = parse_cluster(args.cluster)
    if args.id not in cluster:
        raise UsageError(f"--id {args.id!r} is not one of --cluster ({', '.join(cluster)})")
    if not 0 < args.client_port < 65536:
        raise UsageError(f"--client-port {args.client_port} is not a TCP port")
    if args.election_tick <= args.heartbeat_tick or args.heartbeat_tick < 1:
        raise UsageError("need 1 <= --heartbeat-tick < --election-tick")
    data_dir = args.data_dir
    return NodeConfig(
        id=args.id,
        cluster=cluster,
        client_port=args.client_port,
        data_dir=data_dir,
        events_path=args.events or data_dir.parent / "events.jsonl",
        cluster_id=args.cluster_id,
        tick_ms=args.tick_ms,
        election_tick=args.election_tick,
        heartbeat_tick=args.heartbeat_tick,
        unsafe=frozenset(args.unsafe),
        fsync=not args.no_fsync,
        read_mode=args.read_mode,
        snapshot_every=args.snapshot_every,
        max_msg_entries=args.max_msg_entries,
        snapshot_chunk=args.snapshot_chunk,
    )


def run(args: argparse.Namespace) -> int:
    if args.lifeline_fd is not None:
        from splitbrain.cluster.lifeline import watch_lifeline

        watch_lifeline(args.lifeline_fd)
    config = node_config(args)
    log_path = args.log or args.data_dir.parent / "node.log"
    try:
        secret = read_secret(args.secret_file) if args.secret_file is not None else None
        log_path.parent.mkdir(parents=True, exist_ok=True)
        logging.basicConfig(
            filename=log_path,
            level=logging.INFO,
            format=f"%(asctime)s {args.id} %(levelname)s %(message)s",
        )
    except AuthError as exc:
        return _cannot(str(exc))
    except OSError as exc:
        return _cannot(f"cannot open the node log {log_path}: {_describe(exc)}")
    config = replace(config, secret=secret)
    try:
        asyncio.run(_serve(config))
    except (OSError, WALError) as exc:  # a port taken, a bad path, a damaged log: one line
        problem = _describe(exc) if isinstance(exc, OSError) else str(exc)
        log.error("cannot serve: %s", problem)
        return _cannot(problem)
    except Exception:
        log.exception("node crashed")
        raise
    return 0


def _describe(exc: OSError) -> str:
    """`Is a directory: /x` rather than `[Errno 21] Is a directory: '/x'`."""
    if exc.strerror and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return exc.strerror or str(exc)


def _cannot(problem: str) -> int:
    print(f"splitbrain node: error: {problem}", file=sys.stderr, flush=True)
    return COULD_NOT_RUN


async def _serve(config: NodeConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(config, stop)


async def serve(config: NodeConfig, stop: asyncio.Event, host: NodeHost | None = None) -> None:
    """Say so in the log, then serve until `stop` is set (the simulator runs nodes with this)."""
    log.info(
        "starting node %s of cluster %s (unsafe: %s; peer links %s)",
        config.id,
        config.cluster_id,
        ", ".join(sorted(config.unsafe)) or "none",
        "authenticated" if config.secret is not None else "NOT authenticated (no --secret-file)",
    )
    await Server(config, host).run(stop)

"""Network namespaces for one run: one per node, joined by veth pairs to a bridge in a namespace
of its own. Made and removed with iproute2's `ip`; filtered with nftables (cluster/firewall.py).

Names carry the run's network id RID (6 hex digits), so leftovers can be told apart and swept:

    sb-RID-_net     the bridge namespace: bridge sbRIDbr with 10.77.0.254/24, the driver's address
                    (node names cannot start with "_", so it never clashes with a node's)
    sb-RID-NODE     one per node: veth sbRIDn<i> with 10.77.0.<i>/24 and lo, both up
    veth pairs      sbRIDh<i> (a port of the bridge, in sb-RID-_net) <-> sbRIDn<i> (in the node's)
    nftables        table inet splitbrain_RID in every node namespace (firewall.py)

Nothing is created in the root namespace, so every address exists only inside the run's
namespaces. While the run talks to its nodes the driver's thread sits in the bridge namespace
(nsenter.EnteredNetns): its clients, probes and leader lookups reach each node's own address.

Lifetime rules:
- The driver holds an exclusive flock on /run/splitbrain/netns/RID.lock, with its pid written
  in it, from before the first namespace exists until the last is gone; the kernel drops it
  when the driver dies, however it dies. Namespaces whose lock is free, or held although that
  pid is gone (a child the driver forked holds the lock until it execs), have no driver:
  `sweep` kills what runs in them and deletes them. Every netns run sweeps before it starts;
  `splitbrain clean` sweeps on demand.
- A keeper process (`python -m splitbrain.cluster.netns keep RID`) holds the lifeline; when the
  driver dies, even by SIGKILL, it sweeps the run at once (its parent-death signal is SIGTERM,
  which it handles the same way).
- Deleting a namespace deletes its veth end (and so the pair) and its nftables table: deleting
  the namespaces removes everything the run made.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import re
import secrets
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from splitbrain.cluster.lifeline import Lifeline
from splitbrain.cluster.network import NetworkError
from splitbrain.cluster.nsenter import EnteredNetns

SUBNET = "10.77.0"  # node i is SUBNET.i; the bridge (the driver) is SUBNET.254
BRIDGE_HOST = 254
MAX_NODES = 253
NETNS_DIR = Path("/run/netns")  # where `ip netns` binds named namespaces
LOCK_DIR = Path("/run/splitbrain/netns")
NAME = re.compile(r"^sb-([0-9a-f]{6})-(.+)$")
COMMAND_TIMEOUT = 20.0
LOCK_RELEASE_WAIT = 5.0  # seconds a keeper waits for a dying driver's lock
_CAP_NET_ADMIN, _CAP_SYS_ADMIN = 12, 21
_SBIN = ":/usr/sbin:/sbin"


class NetnsError(NetworkError):
    """A namespace, link or rule could not be made; the message quotes the command and its error."""


def tool(name: str) -> str | None:
    """Path of an administration tool, also looked up in the sbin directories."""
    return shutil.which(name, path=os.environ.get("PATH", "") + _SBIN)


def missing() -> str | None:
    """What this machine lacks to run in netns mode (a run then exits 3), or None."""
    caps = 0
    with contextlib.suppress(OSError, ValueError, StopIteration):
        status = Path("/proc/self/status").read_text().splitlines()
        caps = int(next(line.split()[1] for line in status if line.startswith("CapEff:")), 16)
    needed = (1 << _CAP_NET_ADMIN) | (1 << _CAP_SYS_ADMIN)
    if os.geteuid() != 0 and caps & needed != needed:
        return ("network mode netns needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN) to create "
                "and enter network namespaces: run as root, or use --network proxy")
    for name, package in (("ip", "iproute2"), ("nft", "nftables")):
        if tool(name) is None:
            return f"network mode netns needs `{name}`: install Debian's {package} package"
    return None


def ns_name(rid: str, node: str) -> str:
    return f"sb-{rid}-{node}"


def bridge_ns(rid: str) -> str:
    return f"sb-{rid}-_net"


def node_address(index: int) -> str:
    return f"{SUBNET}.{index}"


class Namespaces:
    """The namespaces, bridge and veths of one run; `create`, then `close` (synchronous)."""

    def __init__(self, rid: str, nodes: Sequence[str], lock_fd: int, log: Path | None) -> None:
        self.rid = rid
        self.nodes = tuple(nodes)
        self.log = log
        self.keeper: psutil.Popen | None = None
        self._lock_fd = lock_fd
        self._made: list[str] = []  # namespaces made so far, bridge first
        self._entered: EnteredNetns | None = None

    @classmethod
    async def create(cls, nodes: Sequence[str], lifeline: Lifeline, log: Path | None = None
                     ) -> Namespaces:  # fmt: skip
        """Sweep leftovers, then make the run's namespaces and start its keeper."""
        if len(nodes) > MAX_NODES:
            raise ValueError(f"netns mode takes at most {MAX_NODES} nodes (one /24 subnet)")
        await asyncio.to_thread(sweep)
        rid, lock_fd = _new_lock()
        ns = cls(rid, nodes, lock_fd, log)
        try:
            ns._start_keeper(lifeline)
            await ns._build()
        except BaseException:
            ns.close()
            raise
        return ns

    def path(self, node: str) -> Path:
        return NETNS_DIR / ns_name(self.rid, node)

    def address(self, node: str) -> str:
        return node_address(self.nodes.index(node) + 1)

    @property
    def names(self) -> list[str]:
        return [bridge_ns(self.rid), *(ns_name(self.rid, n) for n in self.nodes)]

    def _start_keeper(self, lifeline: Lifeline) -> None:
        from splitbrain.cluster.process import spawn

        self.keeper = spawn(
            [sys.executable, "-m", "splitbrain.cluster.netns", "keep", self.rid,
             "--lifeline-fd", str(lifeline.fd)],
            lifeline, output=self.log, death_signal=signal.SIGTERM,
        )  # fmt: skip

    async def _build(self) -> None:
        rid, br = self.rid, bridge_ns(self.rid)
        bridge = f"sb{rid}br"
        await self._ip("netns", "add", br)
        self._made.append(br)
        await self._ip("-n", br, "link", "set", "lo", "up")
        await self._ip("-n", br, "link", "add", bridge, "type", "bridge")
        await self._ip("-n", br, "addr", "add", f"{SUBNET}.{BRIDGE_HOST}/24", "dev", bridge)
        await self._ip("-n", br, "link", "set", bridge, "up")
        for i, node in enumerate(self.nodes, start=1):
            ns, host_end, node_end = ns_name(rid, node), f"sb{rid}h{i}", f"sb{rid}n{i}"
            await self._ip("netns", "add", ns)
            self._made.append(ns)
            await self._ip("-n", br, "link", "add", host_end, "type", "veth", "peer", "name",
                           node_end, "netns", ns)  # fmt: skip
            await self._ip("-n", br, "link", "set", host_end, "master", bridge, "up")
            await self._ip("-n", ns, "addr", "add", f"{node_address(i)}/24", "dev", node_end)
            await self._ip("-n", ns, "link", "set", node_end, "up")
            await self._ip("-n", ns, "link", "set", "lo", "up")

    async def _ip(self, *args: str) -> None:
        await self.command([tool("ip") or "ip", *args])

    async def command(self, argv: Sequence[str], *, netns: str | None = None,
                      stdin: str | None = None) -> None:  # fmt: skip
        """Run an administration command (in a namespace of this run); NetnsError if it fails."""
        from splitbrain.cluster.nsenter import enter_netns

        where = NETNS_DIR / netns if netns else None
        shown = (f"ip netns exec {netns} " if netns else "") + shlex.join(argv)
        self._log(shown + (f" <<EOF\n{stdin}EOF" if stdin else ""))
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                preexec_fn=(lambda: enter_netns(where)) if where else None,
            )  # fmt: skip
            async with asyncio.timeout(COMMAND_TIMEOUT):
                out, _ = await proc.communicate(stdin.encode() if stdin else None)
        except (OSError, subprocess.SubprocessError, TimeoutError) as exc:
            raise NetnsError(f"{shown}: {exc or type(exc).__name__}") from exc
        if proc.returncode != 0:
            text = out.decode(errors="replace").strip()
            self._log(f"  -> exit {proc.returncode}: {text}")
            raise NetnsError(f"{shown}: exit {proc.returncode}: {text}")

    def _log(self, line: str) -> None:
        if self.log is not None:
            with self.log.open("a", encoding="utf-8") as f:
                f.write(line + "\n")

    def enter(self) -> None:
        """Move the calling (event loop) thread into the bridge namespace until `close`."""
        if self._entered is None:
            self._entered = EnteredNetns(NETNS_DIR / bridge_ns(self.rid))

    def close(self) -> None:
        """Leave, kill what still runs inside, delete every namespace, stop the keeper, unlock.
        Synchronous and idempotent, like the rest of teardown."""
        from splitbrain.cluster.process import stop_all

        if self._entered is not None:
            self._entered.leave()
            self._entered = None
        for name in reversed(self._made):
            self._log(f"ip netns del {name}")
            if (error := delete(name)) is not None:
                self._log(f"  -> {error}")
        self._made.clear()
        if self._lock_fd >= 0:
            with contextlib.suppress(OSError):
                (LOCK_DIR / f"{self.rid}.lock").unlink()
            os.close(self._lock_fd)
            self._lock_fd = -1
        if self.keeper is not None:
            stop_all([self.keeper], grace=5.0)  # it finds nothing left to sweep and exits
            self.keeper = None


def _new_lock() -> tuple[str, int]:
    """A fresh run id and its lock, held (exclusive flock) by this process. The lock is taken
    under a temporary name and then linked into place, so no sweeper ever sees it unheld."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    taken = {m.group(1) for m in map(NAME.match, list_namespaces()) if m}
    while True:
        rid = secrets.token_hex(3)
        if rid in taken:
            continue
        tmp = LOCK_DIR / f".{rid}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            os.link(tmp, LOCK_DIR / f"{rid}.lock")
        except FileExistsError:
            os.close(fd)
            continue
        finally:
            tmp.unlink()
        return rid, fd


# Sweeping: what is left when a driver died.


def list_namespaces() -> list[str]:
    """Names of the named network namespaces (ip netns list)."""
    ip = tool("ip")
    if ip is None:
        return []
    out = subprocess.run([ip, "netns", "list"], capture_output=True, text=True,
                         timeout=COMMAND_TIMEOUT, check=False).stdout  # fmt: skip
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def driver_alive(rid: str) -> bool:
    """Does the run's driver live? Its lock is held and the pid written in it is a live process.
    Probed with a shared lock: the driver's is exclusive, and two sweepers probing at once must
    not take each other for a driver. The pid matters because a child forked by the driver holds
    the lock too until it execs (or for ever, if it hangs before): a lock held after the driver
    itself is gone is an orphan's, not a driver's."""
    try:
        fd = os.open(LOCK_DIR / f"{rid}.lock", os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _alive(os.pread(fd, 32, 0))
    finally:
        os.close(fd)  # also releases the lock if we got it
    return False


def _alive(recorded: bytes) -> bool:
    """Is the process whose pid was written in a lock alive? An unreadable pid counts as alive."""
    try:
        return psutil.Process(int(recorded.split()[0])).status() != psutil.STATUS_ZOMBIE
    except (ValueError, IndexError):
        return True
    except psutil.Error:
        return False


def delete(name: str) -> str | None:
    """Kill every process in namespace `name`, then delete it; None, or why it is still there."""
    ip = tool("ip") or "ip"
    pids = subprocess.run([ip, "netns", "pids", name], capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT, check=False).stdout.split()  # fmt: skip
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    done = subprocess.run([ip, "netns", "del", name], capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT, check=False)  # fmt: skip
    if done.returncode != 0 and (NETNS_DIR / name).exists():
        return f"ip netns del {name}: exit {done.returncode}: {done.stderr.strip()}"
    return None


def sweep(rid: str | None = None) -> list[str]:
    """Delete the namespaces of runs whose driver is gone (only run `rid`'s if given), and their
    stale locks; returns the namespaces deleted."""
    by_run: dict[str, list[str]] = {}
    for name in list_namespaces():
        m = NAME.match(name)
        if m and (rid is None or m.group(1) == rid):
            by_run.setdefault(m.group(1), []).append(name)
    locks = {p.stem for p in LOCK_DIR.glob("*.lock")} if LOCK_DIR.is_dir() else set()
    removed = []
    for run in sorted(set(by_run) | (locks if rid is None else locks & {rid})):
        if driver_alive(run):
            continue
        for name in sorted(by_run.get(run, []), key=lambda n: n == bridge_ns(run)):
            error = delete(name)  # the nodes' first, the bridge's last
            if error is None:
                removed.append(name)
            else:
                print(f"splitbrain: {error}", file=sys.stderr, flush=True)
        with contextlib.suppress(OSError):
            (LOCK_DIR / f"{run}.lock").unlink()
    return removed


def keep(rid: str, lifeline_fd: int) -> None:
    """The keeper: wait for the driver to die (lifeline EOF) or to ask (SIGTERM), then sweep its
    run (nothing, if the driver is alive). The SIGTERM handler only wakes the wait up, so a
    signal arriving with the EOF can never cut the sweep short; SIGTERM comes blocked from
    `spawn`, so one sent while this process started is taken here, not fatal. A dying driver
    closes the lifeline (and its threads send the parent-death signal) a moment before it is
    gone: wait for that. What it did goes to its output, the run's network.log."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGTERM, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    select.select([lifeline_fd, wake_r], [], [])
    deadline = time.monotonic() + LOCK_RELEASE_WAIT
    while driver_alive(rid) and time.monotonic() < deadline:
        time.sleep(0.02)
    removed = sweep(rid)
    print(f"keeper {rid}: " + (f"swept {' '.join(removed)}" if removed else "nothing to sweep")
          + (" (the driver lives)" if driver_alive(rid) else ""), flush=True)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="splitbrain-netns-keeper")
    sub = parser.add_subparsers(dest="command", required=True)
    k = sub.add_parser("keep")
    k.add_argument("rid")
    k.add_argument("--lifeline-fd", type=int, required=True)
    args = parser.parse_args(argv)
    keep(args.rid, args.lifeline_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Teardown under SIGKILL: kill `splitbrain run` at seeded random moments, count what is left.

    python bench/teardown.py [--kills 60] [--seed 1] [--grace 20]

Each kill starts `splitbrain run` (3 nodes; the network, proxy or netns, and a fault mix drawn
per kill, some of whose faults mount disks or fake clocks), SIGKILLs the driver 0 to 5 s in
(the first half second is startup: spawning, mounting, making namespaces) and waits up to
`--grace` seconds for everything the run started to go. This process is the runs' child
subreaper, so every process a run started is its descendant even after the driver's death;
what is still there after the grace is a leftover: a process, a mount of our disk filesystem
(disks.mounts) or a network namespace of ours. A leftover is cleaned up (killed, unmounted,
swept) so that the next kill starts clean. Netns, disk and clock mixes are drawn only where the
machine can run them (root, FUSE, libfaketime); the JSON says which could not.

Prints one JSON object: {"kills": N, "with_leftovers": n, "leftovers": [{kill, network,
nemesis, after_s, left}], "unavailable": {...}, "wall_s": ...}; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from typing import Any

import psutil

from splitbrain.cluster import clocks, disks, netns

PR_SET_CHILD_SUBREAPER = 36
MIXES = {  # a fault mix and what it needs beyond the bundled Raft
    "partition,pause": None,
    "kill,partition": None,
    "all": "disks",
    "power-loss,partition": "disks",
    "kill,corrupt": "disks",
    "disk-full,pause": "disks",
    "clock,partition": "clocks",
}
KILL_AFTER = (0.0, 0.5, 2.5, 5.0)  # seconds: startup, then early and later in the run


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit(f"teardown: cannot become a child subreaper: {os.strerror(ctypes.get_errno())}")


def descendants() -> list[psutil.Process]:
    """Processes the runs started that still run; exited ones are reaped (they are ours)."""
    alive = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(proc.pid, os.WNOHANG)
            else:
                alive.append(proc)
        except (psutil.Error, ChildProcessError):
            pass
    return alive


def command(proc: psutil.Process) -> str | None:
    try:
        return " ".join(proc.cmdline())[:200]
    except psutil.Error:  # it exited meanwhile
        return None


def ours() -> dict[str, list[str]]:
    return {
        "processes": [c for c in map(command, descendants()) if c is not None],
        "mounts": [str(m.mountpoint) for m in disks.mounts()],
        "namespaces": [n for n in netns.list_namespaces() if netns.NAME.match(n)],
    }


def clean_up() -> None:
    for proc in descendants():
        proc.kill()
    psutil.wait_procs(descendants(), timeout=10)
    netns.sweep()
    disks.sweep()  # their daemons are gone now


def kill_once(n: int, rng: random.Random, networks: list[str], mixes: list[str],
              grace: float) -> dict[str, Any]:  # fmt: skip
    network, nemesis = rng.choice(networks), rng.choice(mixes)
    bucket = rng.randrange(len(KILL_AFTER) - 1)
    after = rng.uniform(KILL_AFTER[bucket], KILL_AFTER[bucket + 1])
    with tempfile.TemporaryDirectory(prefix="teardown-") as out:
        driver = subprocess.Popen(
            [sys.executable, "-m", "splitbrain", "run", "--out", out, "--nodes", "3",
             "--time-limit", "30", "--nemesis", nemesis, "--nemesis-interval", "0.5",
             "--network", network, "--seed", str(n)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(after)
        driver.kill()
        driver.wait()
        deadline = time.monotonic() + grace
        while any(ours().values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = {k: v for k, v in ours().items() if v}
        if left:
            clean_up()
    return {"kill": n, "network": network, "nemesis": nemesis, "after_s": round(after, 3),
            "left": left}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--grace", type=float, default=20.0, help="seconds to wait after a kill")
    args = parser.parse_args()
    become_subreaper()
    unavailable = {k: why for k, why in (("netns", netns.missing()), ("disks", disks.missing()),
                                         ("clocks", clocks.missing())) if why}  # fmt: skip
    networks = ["proxy"] + (["netns"] if "netns" not in unavailable else [])
    mixes = [m for m, needs in MIXES.items() if needs not in unavailable]
    if any(ours().values()):
        sys.exit(f"teardown: leftovers of an earlier run are here already: {ours()}")
    rng = random.Random(args.seed)
    start = time.monotonic()
    kills = []
    for n in range(args.kills):
        kills.append(kill_once(n, rng, networks, mixes, args.grace))
        print(f"kill {n + 1}/{args.kills}: {'LEFT ' if kills[-1]['left'] else ''}"
              f"{json.dumps(kills[-1])}", file=sys.stderr, flush=True)  # fmt: skip
    leftovers = [k for k in kills if k["left"]]
    print(json.dumps({"kills": len(kills), "with_leftovers": len(leftovers),
                      "leftovers": leftovers, "unavailable": unavailable,
                      "wall_s": round(time.monotonic() - start, 1)}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()

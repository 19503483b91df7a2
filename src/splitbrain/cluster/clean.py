"""`splitbrain clean`: remove what runs whose driver is gone left behind.

A netns run's keeper removes its namespaces when the driver dies, a disk daemon unmounts its
node's data directory, and every run sweeps what it would use before it starts; this command
sweeps on demand (e.g. after a machine-wide kill): the network namespaces named sb-RID-* whose
driver no longer holds its lock, and whatever still runs in them (cluster/netns.py), and the
FUSE mounts of disk faults whose daemon is gone (cluster/disks.py). Runs in progress are left
alone. Exit 0, or 3 if something could not be removed (not root).
"""

from __future__ import annotations

import argparse

from splitbrain.cluster import disks, netns
from splitbrain.exitcodes import COULD_NOT_RUN


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options: it removes only what nobody owns


def run(args: argparse.Namespace) -> int:
    removed = netns.sweep()
    for name in removed:
        print(f"removed network namespace {name}")
    unmounted = disks.sweep()
    for path in unmounted:
        print(f"unmounted the disk of a run whose daemon is gone: {path}")
    stuck = [n for n in removed if n in netns.list_namespaces()]
    if stuck:
        print(f"splitbrain clean: could not remove {', '.join(stuck)}: {netns.missing() or ''}")
        return COULD_NOT_RUN
    left = [str(m.mountpoint) for m in disks.mounts() if not disks.daemon_alive(m.pid)]
    if left:
        print(f"splitbrain clean: could not unmount {', '.join(left)} (not root?)")
        return COULD_NOT_RUN
    if not removed and not unmounted:
        print("nothing to clean")
    return 0

"""`splitbrain clean`: remove what runs whose driver is gone left behind.

A netns run's keeper removes its namespaces when the driver dies, and every netns run sweeps
before it starts; this command sweeps on demand (e.g. after a machine-wide kill): the network
namespaces named sb-RID-* whose driver no longer holds its lock, and whatever still runs in
them (cluster/netns.py). Runs in progress are left alone. Exit 0, or 3 if something could not
be removed (not root).
"""

from __future__ import annotations

import argparse

from splitbrain.cluster import netns
from splitbrain.exitcodes import COULD_NOT_RUN


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options: it removes only what nobody owns


def run(args: argparse.Namespace) -> int:
    removed = netns.sweep()
    for name in removed:
        print(f"removed network namespace {name}")
    stuck = [n for n in removed if n in netns.list_namespaces()]
    if stuck:
        print(f"splitbrain clean: could not remove {', '.join(stuck)}: {netns.missing() or ''}")
        return COULD_NOT_RUN
    if not removed:
        print("nothing to clean")
    return 0

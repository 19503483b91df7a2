"""Node settings worth varying per seed (knobs), and how a seed draws them into node arguments.

    extra = draw(RAFT_KNOBS, random.Random(f"{seed}:knobs"), node_args)

Real deployments tune settings such as message sizes, and small values reach states the
defaults pass through too fast to be hit: FoundationDB's simulator randomizes its knobs so. The
simulator's swarm draws these for every seed (sim/swarm.py), and so does a swarm run of
`splitbrain run` (run.py): a knob whose option the user's `--node-arg` names is kept as given.
A target lists the knobs its nodes take (Target.knobs); only the bundled Raft has any.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Knob:
    option: str  # the node's option, e.g. "--max-msg-entries"
    choices: tuple[int, ...]  # drawn uniformly; 0: leave the node's default


# The bundled Raft's, in the order the swarm draws them (sim/swarm.py SETTINGS).
RAFT_KNOBS = {
    # Applied entries between the nodes' snapshots (in two seeds of five the default, which a
    # short run seldom reaches): small enough that followers behind a compacted log are sent
    # InstallSnapshot.
    "snapshot_every": Knob("--snapshot-every", (0, 0, 20, 50, 200)),
    # Entries per AppendEntries message (the default 512 sends a short run's whole backlog at
    # once): a follower that fell behind, or a new leader's followers, catch up over many
    # rounds, each acknowledging a prefix of the leader's suffix.
    "batch": Knob("--max-msg-entries", (0, 0, 1, 4)),
    # Snapshot bytes per InstallSnapshot message (the default sends a test's state machine in
    # one): a transfer takes many rounds, which faults and leader changes cut.
    "chunk": Knob("--snapshot-chunk", (0, 0, 256, 4096)),
}


def node_option(node_args: Sequence[str], option: str) -> str | None:
    """The value the nodes' arguments give `option` (the last one, as the node's parser takes
    it), or None."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument(option)
    known, _ = parser.parse_known_args(list(node_args))
    return getattr(known, option.lstrip("-").replace("-", "_"))


def draw(knobs: Mapping[str, Knob], rng: random.Random, node_args: Sequence[str]
         ) -> tuple[str, ...]:  # fmt: skip
    """The node arguments of the knobs drawn (a default drawn adds none), leaving out every knob
    whose option `node_args` names. Every knob is drawn, named or not, so naming one leaves
    the others' draws as they were."""
    drawn = [(knob.option, rng.choice(knob.choices)) for knob in knobs.values()]
    return tuple(f"{option}={value}" for option, value in drawn
                 if value and node_option(node_args, option) is None)  # fmt: skip

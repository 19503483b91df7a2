"""Put the corpus's equivalence claims to the test: count, in simulated runs, the states where a
mutant would act otherwise than the code it replaces (prints one JSON object).

    python bench/witness.py [--seeds 2000] [--seed 1] [--jobs 2] [SIM OPTIONS, e.g. --unsafe X]

Two mutants of bench/mutants/ are marked equivalent for one reason: in the bundled Raft a
follower's log holds entries beyond the last one an append carried only when they are the
sending leader's own. A leader backs off by conflict term to exactly where the logs part (so the
first entry it sends replaces a divergent suffix) and ends every log it inherits with its
election no-op; what a follower holds beyond an append is then an earlier copy of that
leader's appends. The mutants differ from the code only in those states (`append`):
append-ack-whole-log acknowledges the follower's last index instead of the append's last, and
commit-follower-to-last-index commits up to min(leaderCommit, last index). A third,
install-commits-kept-suffix, commits the suffix a follower keeps after installing a snapshot
(`install`); it is not marked, and this script shows why: the suffix kept can reach beyond the
commit index the leader sent. A fourth, install-keeps-log-any-term, is marked equivalent for a
reason of its own. It keeps a follower's suffix after a snapshot whose last index it holds
with another term (`install-any-term`, recorded before the install discards it). The claim:
such entries come from leaders that lacked the committed entry at that index, so their terms
are below the term of the leader's entry at its commit index, which a majority holds; the
follower can then win no vote with them, and the leader's next append replaces them. Verdict
`outvoted` if every kept term is below it, `divergent` (refuting the claim) if not. A fifth,
append-acks-replaced-entries, sends the acknowledgements a follower had queued for entries that
a later leader's append replaced in the same Ready (`dropped-ack`, recorded where the code
drops them). The claim: no majority can acknowledge such entries, so the old leader never
commits them. Verdict `deposed` if the ack's leader no longer leads its term (it would ignore
it), `short` if counting it now would commit nothing it cannot commit without it, `commits`
(refuting the claim) if it would. Slow fsyncs reach the state: `--nodes 5 --disk-tail 0.1,0.3
--nemesis partition,net`.

It patches a recorder into an unmutated copy of src/splitbrain (the mutation bench's copy) so
that a follower notes each such state with a verdict: `leaders` (the entries beyond are in the
sending leader's log, read from the live object: the simulator runs every node in one process),
`divergent` (they are not), `uncommitted` (install only: they are the leader's but beyond the
commit index it sent) or `undecided` (the sender no longer led that term when the message
arrived). Entries the leader has compacted into a snapshot cannot be compared and are taken as
the leader's (they are committed: the log-agreement checker compares those). It runs
`splitbrain sim --seeds N` with the copy first on PYTHONPATH and prints the counts; a
divergent `append` or `install-any-term` state, or a `dropped-ack` that `commits`, refutes a
claim (exit 1). Snapshots are rare in short runs: `--node-arg=--snapshot-every=20` (passed on
to sim) reaches the install states. The instrumented runs must all be valid. Without the
election no-op (`--unsafe commit-old-terms`) divergent append states abound.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mutants  # bench/ is not a package: its scripts import each other by path

# The recorder, written into the copy as splitbrain/raft/_witness.py.
RECORDER = '''
"""Records the states the witness bench counts (bench/witness.py); never shipped."""
import os

from splitbrain.raft.quorum import committed_index

NODES = {}


def record(node, m, start, state):
    sender = _leading(m.src, m.term)
    log = node.log
    verdict = "undecided"
    if sender is not None:
        verdict = "leaders"
        theirs = sender.log
        for i in range(start + 1, log.last_index + 1):
            if i <= theirs.offset:
                continue
            if i > theirs.last_index or theirs.term(i) != log.term(i):
                verdict = "divergent"
                break
        if verdict == "leaders" and state == "install" and log.last_index > m.commit:
            verdict = "uncommitted"
    _write(state, verdict)


def record_kept_any_term(m, terms):
    # The follower holds the snapshot's last index with another term, and `terms` after it.
    sender = _leading(m.src, m.term)
    verdict = "undecided"
    if sender is not None:
        theirs = sender.log
        below = theirs.term(theirs.committed)  # a majority holds an entry of this term
        verdict = "outvoted" if max(terms) < below else "divergent"
    _write("install-any-term", verdict)


def record_dropped_acks(node, dropped, index):
    # The follower replaced its entries from `index` on in this Ready and unsent the
    # acknowledgements it had queued for them (`dropped`). Would the leader each was meant for,
    # counting it now, commit an entry from `index` on that it cannot commit without it?
    for ack in dropped:
        leader = _leading(ack.dst, ack.term)
        verdict = "deposed"  # it no longer leads the ack's term: the ack would be ignored
        if leader is not None:
            matches = {peer: pr.match for peer, pr in leader.prs.items()}
            before = committed_index([leader.log.stable, *matches.values()])
            matches[node.id] = max(matches.get(node.id, 0), ack.index)
            after = committed_index([leader.log.stable, *matches.values()])
            gains = after > max(before, leader.log.committed) and after >= index
            verdict = "commits" if gains and leader.log.term(after) == ack.term else "short"
        _write("dropped-ack", verdict)


def _leading(name, term):
    # The node, if it still leads that term (else no verdict).
    node = NODES.get(name)
    if node is not None and node.term == term and node.role == "leader":
        return node
    return None


def _write(state, verdict):
    with open(os.environ["SPLITBRAIN_WITNESS"], "a") as out:
        out.write(f"{state} {verdict}\\n")
'''

# (file, find, replace): each find occurs exactly once (checked as the mutants' snippets are).
PATCHES = (
    ("raft/raft.py", """
from splitbrain.raft.log import RaftLog
""", """
from splitbrain.raft import _witness
from splitbrain.raft.log import RaftLog
"""),
    ("raft/raft.py", """
        self.log = RaftLog(entries, hard_state.commit,
""", """
        _witness.NODES[config.id] = self
        self.log = RaftLog(entries, hard_state.commit,
"""),
    ("raft/raft.py", """
            last_new, truncated = result
""", """
            last_new, truncated = result
            if log.last_index > last_new:
                _witness.record(self, m, last_new, "append")
"""),
    ("raft/raft.py", """
                self._drop_acks_from(truncated)
""", """
                queued = self.msgs
                self._drop_acks_from(truncated)
                _witness.record_dropped_acks(
                    self, [a for a in queued if a not in self.msgs], truncated)
"""),
    ("raft/raft.py", """
        if log.restore(m.index, m.log_term):
            self._drop_acks_from(m.index + 1)
""", """
        kept = log.matches(m.index, m.log_term)
        if not kept and log.last_index > m.index:
            _witness.record_kept_any_term(
                m, [log.term(i) for i in range(m.index + 1, log.last_index + 1)])
        if log.restore(m.index, m.log_term):
            self._drop_acks_from(m.index + 1)
        if kept and log.last_index > m.index:
            _witness.record(self, m, m.index, "install")
"""),
)

VERDICTS = ("leaders", "divergent", "uncommitted", "outvoted", "deposed", "short", "commits",
            "undecided")
STATES = ("append", "install", "install-any-term", "dropped-ack")
_SUMMARY = re.compile(r"(\d+) seeds in .*?(\d+) invalid, (\d+) unknown, (\d+) could not run")


def instrumented(dest: Path) -> Path:
    """An unmutated copy of src/splitbrain with the recorder patched in."""
    tree = mutants.mutated_tree(None, dest)
    package = tree / "splitbrain"
    (package / "raft" / "_witness.py").write_text(RECORDER, encoding="utf-8")
    for n, (file, find, replace) in enumerate(PATCHES):
        path = package / file
        patch = mutants.Mutant(f"witness-{n}", "witness", "", file, find, replace)
        path.write_text(mutants.mutate(patch, path.read_text(encoding="utf-8")),
                        encoding="utf-8")  # fmt: skip
    return tree


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1, help="the first seed")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args, sim_args = parser.parse_known_args()
    with tempfile.TemporaryDirectory(prefix="splitbrain-witness-") as tmp:
        base = Path(tmp)
        tree = instrumented(base / "tree")
        mutants.check_imports_copy(tree)
        states = base / "states.txt"
        states.touch()
        env = {**mutants.child_env(tree), "SPLITBRAIN_WITNESS": str(states)}
        argv = [sys.executable, "-m", "splitbrain", "sim", "--seeds", str(args.seeds),
                "--seed", str(args.seed), "--jobs", str(args.jobs), "--out", str(base / "runs"),
                *sim_args]  # fmt: skip
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=base)
        found = _SUMMARY.search(proc.stdout)
        if proc.returncode not in (0, 1) or found is None:
            print(f"witness: the simulation did not run (exit {proc.returncode}):\n"
                  f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}", file=sys.stderr)  # fmt: skip
            return 3
        counts = Counter(tuple(line.split()) for line in states.read_text().splitlines())
    seeds, invalid, unknown, failed = map(int, found.groups())
    report = {
        "seeds": seeds, "first_seed": args.seed, "sim_args": sim_args,
        "invalid": invalid, "unknown": unknown, "could_not_run": failed,
        "states": {state: {"reached": sum(n for (s, _), n in counts.items() if s == state),
                           **{v: counts[(state, v)] for v in VERDICTS}}
                   for state in STATES},
    }  # fmt: skip
    print(json.dumps(report, indent=2))
    seen = report["states"]
    refuted = (any(seen[state]["divergent"] for state in ("append", "install-any-term"))
               or seen["dropped-ack"]["commits"])
    return 1 if refuted or invalid or unknown or failed else 0


if __name__ == "__main__":
    sys.exit(main())

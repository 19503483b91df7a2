"""A stand-in for `splitbrain run` in campaign tests: it writes a synthetic run directory
(splitbrain.testing.runs) whose verdict the seed decides, in milliseconds, no processes."""

from __future__ import annotations

import json
from pathlib import Path

from splitbrain.reports import write_report
from splitbrain.testing.runs import build_run

# seed -> what the fake run comes to
VALID, INVALID, UNKNOWN, HARNESS, USAGE = 1, 2, 3, 4, 5


def fake_launch(args: list[str], console: Path, timeout: float) -> int | None:
    def arg(flag: str) -> str:
        return args[args.index(flag) + 1]

    seed, out, name = int(arg("--seed")), Path(arg("--out")), arg("--name")
    if seed == USAGE:
        console.write_text("splitbrain run: error: argument --frob: bad\n")
        return 64
    run = build_run(out, name=name, seed=seed, calls=60,
                    failure="linearizability" if seed == INVALID else None)
    console.write_text(f"splitbrain run {run.path}\n")
    if seed == HARNESS:
        run.results.unlink()
        (run.path / "harness-error.txt").write_text("Traceback ...\nNodeError: n1 did not start\n")
        return 3
    if seed == UNKNOWN:
        results = json.loads(run.results.read_text())
        results.update(valid="unknown", cause="linearizable: time limit of 1 s reached")
        results["checkers"]["linearizable"] = {"valid": "unknown", "cause": "time limit"}
        run.results.write_text(json.dumps(results))
    write_report(run)
    return {UNKNOWN: 2, INVALID: 1}.get(seed, 0)

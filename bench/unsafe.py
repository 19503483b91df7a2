"""How fast splitbrain catches each deliberately unsafe Raft variant and each unsafe target
configuration: prints one JSON object.

    python bench/unsafe.py [--seeds 1,2,3,4,5] [--variants stale-reads,no-log-check]
                           [--extra "--nemesis-interval 0.5"] [--keep DIR]
    sudo python bench/unsafe.py --variants etcd-serializable-reads --seeds 1,2,3,4,5,6,7,8,9,10

Each variant runs `splitbrain run --nodes 5 --unsafe VARIANT` (or, for a configuration of
another target, `splitbrain run --nodes 5`) with the arguments that provoke it
(splitbrain.testing.unsafe, as the end-to-end tests do) on every seed. Per run: the exit code
(1 = caught), the wall time of the whole run, the checker and violation kind that caught it and
the time to detection: seconds since the run started of the first operation or event that makes
it invalid (splitbrain.testing.detection).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from splitbrain.store import RunDir
from splitbrain.testing.detection import detect
from splitbrain.testing.unsafe import CONFIGURATIONS, PROVOCATIONS

KNOWN = {**PROVOCATIONS, **CONFIGURATIONS}

RUN_TIMEOUT = 300  # seconds for one whole run


def run_one(variant: str, seed: int, args: list[str], base: Path) -> dict[str, Any]:
    out = base / f"{variant}-{seed}"
    unsafe = ["--unsafe", variant] if variant in PROVOCATIONS else []
    cmd = [sys.executable, "-m", "splitbrain", "run", "--nodes", "5", *unsafe, *args,
           "--seed", str(seed), "--out", str(out)]
    began = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    record: dict[str, Any] = {"seed": seed, "exit": proc.returncode, "caught": proc.returncode == 1,
                              "wall_s": round(time.monotonic() - began, 1)}
    runs = sorted(out.glob("*/*/results.json"))
    if runs:
        record.update(detect(RunDir(runs[-1].parent)).to_json())
        record["run"] = str(runs[-1].parent)  # gone after the bench unless --keep
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--variants", default=",".join(PROVOCATIONS),
                        help=f"any of {', '.join(KNOWN)}")
    parser.add_argument("--extra", default="",
                        help="more `splitbrain run` arguments, after the variant's (they win)")
    parser.add_argument("--keep", default=None, help="keep the run directories here")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in KNOWN]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r} (known: {', '.join(KNOWN)})")
    extra = shlex.split(args.extra)
    report: dict[str, Any] = {"nodes": 5, "variants": {}}
    with tempfile.TemporaryDirectory(prefix="bench-unsafe-") as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        for variant in variants:
            run_args = [*KNOWN[variant].args, *extra]
            runs = [run_one(variant, seed, run_args, base) for seed in seeds]
            times = [r["detect_s"] for r in runs if r.get("caught") and r.get("detect_s")]
            report["variants"][variant] = {
                "args": ["--nodes", "5", *(["--unsafe", variant] if variant in PROVOCATIONS
                                           else []), *run_args],
                "caught": f"{sum(r['caught'] for r in runs)}/{len(runs)}",
                "detect_s_median": statistics.median(times) if times else None,
                "runs": runs,
            }
            print(json.dumps({variant: report["variants"][variant]["caught"]}), file=sys.stderr)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""How fast splitbrain catches each deliberately unsafe Raft variant and each unsafe target
configuration: prints one JSON object.

    python bench/unsafe.py [--config generic|provoked] [--seeds 1,2,3] [--variants a,b]
                           [--correct N [--correct-seed S]] [--extra "..."] [--keep DIR]
    sudo python bench/unsafe.py --variants etcd-serializable-reads --seeds 1,2,3,4,5,6,7,8,9,10

Each variant of the bundled Raft runs `splitbrain run --nodes 5 --unsafe VARIANT` on every seed,
with one configuration for all (`generic`, the default: splitbrain.testing.unsafe.GENERIC,
`--nemesis all --time-limit 60`) or with the arguments written to provoke each (`provoked`:
PROVOCATIONS, as the end-to-end tests run them); a configuration of another target
(CONFIGURATIONS) runs `splitbrain run --nodes 5` with its own arguments. `--correct N` also runs
the correct Raft on N seeds with the generic configuration: every run that is not valid is
listed (a false alarm if invalid). Per run: the exit code (1 = caught), the wall time of the
whole run, and the time to detection: seconds since the run started (history.jsonl `time`) of
the first operation or event that makes it invalid, and the checker and violation kind that
caught it (splitbrain.testing.detection).
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
from splitbrain.testing.unsafe import CONFIGURATIONS, GENERIC, PROVOCATIONS

KNOWN = {**PROVOCATIONS, **CONFIGURATIONS}

RUN_TIMEOUT = 300  # seconds for one whole run


def run_one(variant: str | None, seed: int, args: list[str], base: Path) -> dict[str, Any]:
    """One `splitbrain run` of `variant` (None: the correct Raft)."""
    out = base / f"{variant or 'correct'}-{seed}"
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
    parser.add_argument("--config", choices=("generic", "provoked"), default="generic",
                        help="generic: one configuration for every Raft variant (%(default)s)")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--variants", default=",".join(PROVOCATIONS),
                        help=f"any of {', '.join(KNOWN)}; empty for none")
    parser.add_argument("--correct", type=int, default=0, metavar="N",
                        help="also run the correct Raft on N seeds (1000, 1001, ...)")
    parser.add_argument("--correct-seed", type=int, default=1000, metavar="S",
                        help="the first seed of the correct runs (%(default)s)")
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

    def arguments(variant: str | None) -> list[str]:
        generic = variant is None or (args.config == "generic" and variant in PROVOCATIONS)
        return [*(GENERIC if generic else KNOWN[variant].args), *extra]

    report: dict[str, Any] = {"nodes": 5, "config": args.config, "variants": {}}
    with tempfile.TemporaryDirectory(prefix="bench-unsafe-") as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        for variant in variants:
            runs = [run_one(variant, seed, arguments(variant), base) for seed in seeds]
            times = [r["detect_s"] for r in runs if r.get("caught") and r.get("detect_s")]
            report["variants"][variant] = {
                "args": ["--nodes", "5", *(["--unsafe", variant] if variant in PROVOCATIONS
                                           else []), *arguments(variant)],
                "caught": f"{sum(r['caught'] for r in runs)}/{len(runs)}",
                "detect_s_median": statistics.median(times) if times else None,
                "detected_by": sorted({r["kind"] for r in runs if r.get("kind")}),
                "runs": runs,
            }
            print(json.dumps({variant: report["variants"][variant]["caught"]}), file=sys.stderr)
        if args.correct:
            runs = [run_one(None, args.correct_seed + i, arguments(None), base)
                    for i in range(args.correct)]
            report["correct"] = {
                "args": ["--nodes", "5", *arguments(None)],
                "runs": len(runs),
                "valid": sum(r["exit"] == 0 for r in runs),
                "false_alarms": [r for r in runs if r["exit"] == 1],
                "not_valid": [r for r in runs if r["exit"] != 0],
            }
            print(json.dumps({"correct valid": f"{report['correct']['valid']}/{len(runs)}"}),
                  file=sys.stderr)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""Campaign throughput: runs per hour on a LocalCluster with 1 and with 2 workers; prints JSON.

    python bench/campaign.py [--runs 6] [--time-limit 3] [--workers 1,2] [--keep DIR]

For each worker count it runs `splitbrain campaign --seeds RUNS --nemesis partition
--time-limit S --run-arg=--nodes=3 --workers W` and reports the wall time of the whole
campaign (Dask start, every run, campaign.json and campaign.html), runs per hour, and the mean
wall time of one run as the campaign measured it. A run costs more than its time limit:
starting the nodes, the recovery wait and final reads, checking and the report.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CAMPAIGN_TIMEOUT = 1800  # seconds for one whole campaign


def measure(out: Path, runs: int, time_limit: float, workers: int) -> dict:
    cmd = [sys.executable, "-m", "splitbrain", "campaign", "--seeds", str(runs),
           "--nemesis", "partition", "--time-limit", f"{time_limit:g}", "--workers",
           str(workers), "--run-arg=--nodes=3", "--out", str(out / f"w{workers}")]
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=CAMPAIGN_TIMEOUT)
    wall = time.monotonic() - started
    doc = json.loads((out / f"w{workers}" / "latest" / "campaign.json").read_text())
    return {"workers": workers, "runs": runs, "exit_code": done.returncode,
            "wall_s": round(wall, 1), "runs_per_hour": round(runs * 3600 / wall, 1),
            "mean_run_s": round(statistics.mean(r["duration_s"] for r in doc["runs"]), 2),
            "verdicts": {v: n for v, n in doc["counts"].items() if n}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--time-limit", type=float, default=3.0)
    parser.add_argument("--workers", default="1,2", help="worker counts to measure")
    parser.add_argument("--keep", type=Path, help="keep the campaigns here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp)
        results = [measure(out, args.runs, args.time_limit, int(w))
                   for w in args.workers.split(",")]
    print(json.dumps({"bench": "campaign", "time_limit_s": args.time_limit,
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
